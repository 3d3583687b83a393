"""Demo data: realistic, repeatable customers, products and two years of orders, loaded fast.

The same ``seed`` and ``end`` give the same rows. Rows go straight to the DBAPI
(executemany on SQLite, COPY on PostgreSQL) in large batches, with ids counted on
from the current maximum, so 100,000 customers with a million order lines load in
well under a minute, and loading into a database that has data already works.
"""

from __future__ import annotations

import logging
import math
import random
import time
import unicodedata
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, Table, func, select, text

from tenure.catalog.models import Product
from tenure.core.money import to_storage
from tenure.core.time import as_utc
from tenure.customers import personal, search
from tenure.customers.models import Customer, CustomerSearchTerm, CustomerTag
from tenure.db import WRITE_OPTION, make_sessionmaker, unit_of_work
from tenure.orders import service as orders_service
from tenure.orders.models import Order, OrderLine
from tenure.pipeline import demo as pipeline_demo
from tenure.security import service as security_service
from tenure.security.fields import Sealer
from tenure.security.models import User
from tenure.security.passwords import generate_password
from tenure.security.permissions import Role
from tenure.security.schemas import UserCreate
from tenure.service_desk import demo as service_desk_demo

log = logging.getLogger("tenure.demo")

Progress = Callable[[str, int, int], None]
Row = tuple[Any, ...]

DAY = 86_400
WINDOW_DAYS = 730
CURRENCY = "EUR"
# Customers per transaction: bounds the WAL and memory on very large loads.
BLOCK = 100_000
# Customers generated and written at a time: the progress bar moves per chunk.
CHUNK = 10_000
DEFAULT_PRODUCTS = 300
DEFAULT_LINES_PER_CUSTOMER = 10.0
MAX_DEMO_TICKETS = 400
DEMO_SALES_USERS = (
    ("Mia Fischer", "mia.fischer@sales.tenure.example"),
    ("Noah Becker", "noah.becker@sales.tenure.example"),
    ("Li Na", "li.na@sales.tenure.example"),
    ("Lucas Martin", "lucas.martin@sales.tenure.example"),
)


@dataclass(frozen=True)
class DemoStats:
    """What a load wrote, and how long it took."""

    customers: int
    products: int
    orders: int
    order_lines: int
    seconds: float
    tickets: int = 0


# --- Names, places and things -------------------------------------------------------
# fmt: off


@dataclass(frozen=True)
class Locale:
    """Where a customer lives: the names, addresses and phone numbers found there."""

    country: str
    language: str
    weight: float
    given: tuple[str, ...]
    family: tuple[str, ...]
    # (city, postal code pattern, region): '#' is a digit, '@' a capital letter.
    cities: tuple[tuple[str, str, str | None], ...]
    streets: tuple[str, ...]
    number_first: bool
    phone: str
    legal: tuple[str, ...]


LOCALES: tuple[Locale, ...] = (
    Locale(
        "DE",
        "de",
        22,
        ("Anna", "Lena", "Sophie", "Marie", "Hannah", "Katrin", "Sabine", "Ursula", "Jürgen",
         "Lukas", "Jonas", "Felix", "Maximilian", "Stefan", "Thomas", "Andreas", "Michael",
         "Björn", "Dörte", "Günter", "Jörg", "Frieda", "Claudia", "Tobias", "Matthias"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
         "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
         "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann", "Jäger"),
        (("Berlin", "10###", None), ("Hamburg", "20###", None), ("München", "80###", None),
         ("Köln", "50###", None), ("Frankfurt am Main", "60###", None),
         ("Stuttgart", "70###", None), ("Düsseldorf", "40###", None),
         ("Leipzig", "04###", None), ("Dresden", "01###", None), ("Nürnberg", "90###", None)),
        ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Schillerstraße",
         "Goethestraße", "Bergstraße", "Kirchgasse", "Am Markt", "Mühlenweg"),
        False,
        "+49 ### #######",
        ("GmbH", "AG", "GmbH & Co. KG", "KG"),
    ),
    Locale(
        "US",
        "en",
        16,
        ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
         "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
         "Emily", "Daniel", "Olivia", "Ethan", "Madison", "Tyler", "Brianna", "Kevin"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
         "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
         "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
         "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "O'Brien"),
        (("New York", "100##", "NY"), ("Austin", "787##", "TX"), ("Chicago", "606##", "IL"),
         ("Seattle", "981##", "WA"), ("Denver", "802##", "CO"), ("Boston", "021##", "MA"),
         ("San Francisco", "941##", "CA"), ("Atlanta", "303##", "GA"),
         ("Portland", "972##", "OR"), ("Miami", "331##", "FL")),
        ("Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Park Avenue",
         "Washington Boulevard", "Lake Road", "Hillside Court", "Elm Street", "Pine Street"),
        True,
        "+1 ###-555-01##",
        ("Inc.", "LLC", "Corp."),
    ),
    Locale(
        "GB",
        "en",
        12,
        ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Charlie",
         "Grace", "Alfie", "Freya", "Thomas", "Sophie", "Siobhan", "Rhys", "Eilidh",
         "Callum", "Niamh", "Aoife", "Gareth", "Imogen"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
         "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
         "Hall", "Wood", "Jackson", "Clarke", "MacDonald", "O'Connor", "Patel", "Khan",
         "Hughes", "Edwards"),
        (("London", "SW1@ #@@", None), ("Manchester", "M# #@@", None),
         ("Birmingham", "B## #@@", None), ("Leeds", "LS# #@@", None),
         ("Glasgow", "G## #@@", None), ("Bristol", "BS# #@@", None),
         ("Edinburgh", "EH# #@@", None), ("Cardiff", "CF## #@@", None)),
        ("High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane",
         "Manor Road", "Kings Road", "Queen Street", "Mill Lane", "The Crescent"),
        True,
        "+44 20 7946 0###",
        ("Ltd", "PLC", "LLP"),
    ),
    Locale(
        "FR",
        "fr",
        10,
        ("Léa", "Chloé", "Manon", "Camille", "Inès", "Hélène", "Amélie", "Élodie", "Lucas",
         "Hugo", "Louis", "Gabriel", "Jules", "Théo", "Raphaël", "Arthur", "François",
         "Stéphane", "Benoît", "Jérôme", "Clémence", "Maëlle"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
         "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "Bonnet", "Dupont",
         "Lambert", "Fontaine", "Rousseau", "Chevalier"),
        (("Paris", "750##", None), ("Lyon", "6900#", None), ("Marseille", "130##", None),
         ("Toulouse", "310##", None), ("Nice", "060##", None), ("Nantes", "440##", None),
         ("Bordeaux", "330##", None), ("Lille", "590##", None)),
        ("rue de la République", "avenue Victor Hugo", "rue Nationale", "boulevard Voltaire",
         "rue des Lilas", "place de l'Église", "rue du Moulin", "chemin des Vignes"),
        True,
        "+33 # ## ## ## ##",
        ("SARL", "SAS", "SA"),
    ),
    Locale(
        "NL",
        "nl",
        7,
        ("Daan", "Sem", "Lucas", "Levi", "Finn", "Emma", "Julia", "Mila", "Tess", "Sophie",
         "Fleur", "Sanne", "Anouk", "Bram", "Joris", "Maarten", "Femke", "Ruud", "IJsbrand"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen",
         "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos",
         "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer"),
        (("Amsterdam", "10## @@", None), ("Rotterdam", "30## @@", None),
         ("Utrecht", "35## @@", None), ("Den Haag", "25## @@", None),
         ("Eindhoven", "56## @@", None), ("Groningen", "97## @@", None)),
        ("Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsplein", "Prinsengracht",
         "Julianalaan", "Beatrixstraat", "Nieuwstraat"),
        False,
        "+31 6 ########",
        ("B.V.", "N.V."),
    ),
    Locale(
        "ES",
        "es",
        7,
        ("José", "María", "Antonio", "Carmen", "Manuel", "Lucía", "Javier", "Sofía",
         "Alejandro", "Martina", "Pablo", "Paula", "Íñigo", "Begoña", "Andrés", "Nuria",
         "Álvaro", "Rocío", "Sergio", "Elena"),
        ("García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez",
         "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
         "Muñoz", "Álvarez", "Romero", "Navarro", "Núñez", "Ibáñez", "Castaño"),
        (("Madrid", "280##", None), ("Barcelona", "080##", None), ("Valencia", "460##", None),
         ("Sevilla", "410##", None), ("Bilbao", "480##", None), ("Málaga", "290##", None)),
        ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Avenida de la Constitución",
         "Calle Real", "Paseo del Prado", "Calle San Juan", "Plaza de España"),
        False,
        "+34 6## ### ###",
        ("S.L.", "S.A."),
    ),
    Locale(
        "IT",
        "it",
        7,
        ("Giulia", "Francesca", "Chiara", "Sara", "Martina", "Alessandro", "Lorenzo",
         "Matteo", "Andrea", "Leonardo", "Niccolò", "Federica", "Giovanni", "Giuseppe",
         "Luca", "Elisa", "Davide", "Valentina"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
         "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa",
         "Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana"),
        (("Roma", "001##", None), ("Milano", "201##", None), ("Napoli", "801##", None),
         ("Torino", "101##", None), ("Bologna", "401##", None), ("Firenze", "501##", None)),
        ("Via Roma", "Via Garibaldi", "Corso Italia", "Via Dante", "Via Mazzini",
         "Piazza del Duomo", "Via Verdi", "Viale Europa"),
        False,
        "+39 3## ### ####",
        ("S.r.l.", "S.p.A."),
    ),
    Locale(
        "PL",
        "pl",
        5,
        ("Łukasz", "Piotr", "Krzysztof", "Tomasz", "Paweł", "Michał", "Jakub", "Agnieszka",
         "Katarzyna", "Małgorzata", "Magdalena", "Zofia", "Joanna", "Wojciech", "Grzegorz",
         "Ewa"),
        ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
         "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski",
         "Mazur", "Kwiatkowski", "Krawczyk"),
        (("Warszawa", "0#-###", None), ("Kraków", "3#-###", None), ("Wrocław", "5#-###", None),
         ("Gdańsk", "80-###", None), ("Poznań", "6#-###", None)),
        ("ul. Marszałkowska", "ul. Długa", "ul. Piękna", "ul. Kwiatowa", "ul. Polna",
         "ul. Lipowa", "ul. Słoneczna"),
        False,
        "+48 ### ### ###",
        ("Sp. z o.o.", "S.A."),
    ),
    Locale(
        "SE",
        "sv",
        4,
        ("Åsa", "Björn", "Sven", "Ingrid", "Astrid", "Erik", "Lars", "Karin", "Maja", "Elsa",
         "Oskar", "Linnéa", "Göran", "Sören", "Ebba"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
         "Persson", "Svensson", "Gustafsson", "Lindström", "Åberg", "Strömberg", "Ekström",
         "Sjöberg"),
        (("Stockholm", "11# ##", None), ("Göteborg", "41# ##", None),
         ("Malmö", "21# ##", None), ("Uppsala", "75# ##", None)),
        ("Storgatan", "Drottninggatan", "Kungsgatan", "Skolgatan", "Järnvägsgatan",
         "Östra Långgatan"),
        False,
        "+46 7# ### ## ##",
        ("AB",),
    ),
    Locale(
        "CN",
        "zh",
        5,
        ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yang", "Yan", "Jie", "Tao",
         "Ming", "Xiuying", "Hui", "Li"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu",
         "Sun", "Hu", "Zhu", "Guo"),
        (("Shanghai", "2000##", None), ("Beijing", "1000##", None),
         ("Shenzhen", "5180##", None), ("Hangzhou", "3100##", None),
         ("Chengdu", "6100##", None)),
        ("Nanjing Road", "Huaihai Road", "Chang'an Avenue", "Renmin Road", "Zhongshan Road",
         "Jiefang Road"),
        True,
        "+86 1## #### ####",
        ("Co., Ltd.",),
    ),
)

# Chinese names in their own script, for the pinyin spellings above.
HAN = {
    "Wei": "伟", "Fang": "芳", "Na": "娜", "Min": "敏", "Jing": "静", "Lei": "磊",
    "Jun": "军", "Yang": "杨", "Yan": "艳", "Jie": "杰", "Tao": "涛", "Ming": "明",
    "Xiuying": "秀英", "Hui": "慧", "Li": "李", "Wang": "王", "Zhang": "张", "Liu": "刘",
    "Chen": "陈", "Huang": "黄", "Zhao": "赵", "Wu": "吴", "Zhou": "周", "Xu": "徐",
    "Sun": "孙", "Hu": "胡", "Zhu": "朱", "Guo": "郭",
}  # fmt: skip

COMPANY_STEMS = (
    "Nord", "Alpen", "Blue", "Silver", "Oak", "River", "Summit", "Pioneer", "Atlas", "Nova",
    "Vertex", "Harbor", "Cedar", "Falcon", "Granite", "Lumen", "Orbit", "Polar", "Quantum",
    "Meridian", "Aurora", "Beacon", "Cobalt", "Delta", "Evergreen", "Helix", "Ironwood",
    "Juniper", "Keystone", "Lighthouse", "Maple", "Northwind", "Pinnacle", "Redwood",
    "Sterling", "Tidewater", "Union", "Vantage", "Westbrook", "Zenith",
)  # fmt: skip
INDUSTRIES = (
    "Logistics", "Systems", "Foods", "Software", "Consulting", "Design", "Energy", "Health",
    "Retail", "Media", "Labs", "Trading", "Textiles", "Robotics", "Analytics", "Interiors",
    "Motors", "Pharma", "Hospitality", "Architects", "Engineering", "Outfitters",
)  # fmt: skip
PERSON_DOMAINS = ("mail.example", "post.example", "inbox.example", "example.com",
                  "example.net", "example.org", "webmail.example")  # fmt: skip
TAGS = ("newsletter", "vip", "wholesale", "event-lead", "webinar", "referral", "eco",
        "priority-support", "reseller", "trial", "gift-buyer", "holiday-shopper")  # fmt: skip
SOURCES = (("website", 34), ("referral", 14), ("trade-show", 8), ("newsletter", 10),
           ("partner", 7), ("social", 12), ("cold-call", 4), ("webinar", 5),
           ("import", 6))  # fmt: skip
NOTES = (
    "Prefers delivery on weekdays.",
    "Met at the spring trade show.",
    "Asked for a quote on bulk pricing.",
    "Call before noon; works shifts.",
    "Invoice to the accounts department, not the contact.",
    "Interested in the loyalty programme.",
)
COMPANY_MAILBOXES = ("info", "sales", "office", "hello", "contact")
CONTACT = ("email", "email", "email", "phone", "post")
SEASON = (0.85, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.5, 1.8)  # Jan..Dec
# Lines per order (1..10) and how often each occurs.
LINE_COUNTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
LINE_WEIGHTS = (30, 25, 18, 11, 7, 4, 2, 1.5, 0.8, 0.7)
PERSON_QTY = ((1, 75), (2, 17), (3, 5), (4, 2), (5, 1))
COMPANY_QTY = ((1, 20), (2, 20), (3, 10), (5, 15), (10, 15), (20, 10), (25, 5), (50, 5))
# Lines an order ends up with on average: the 2.77 drawn, plus companions, less repeats
# merged into one line (measured over 100,000 customers).
MEAN_LINES = 3.02
COMPANION_RATE = 0.35  # how often a product's usual companion lands in the same order


@dataclass(frozen=True)
class Category:
    name: str
    code: str
    low: float
    high: float
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]


CATEGORIES = (
    Category("Coffee", "COF", 4.5, 39, ("Ethiopian", "Colombian", "Dark Roast", "Espresso",
             "Decaf", "Single-Origin", "House"), ("Beans 250 g", "Beans 1 kg", "Ground 500 g",
             "Capsules x30", "Cold Brew Kit")),
    Category("Tea", "TEA", 3.5, 29, ("Darjeeling", "Sencha", "Earl Grey", "Rooibos",
             "Chamomile", "Oolong", "Masala Chai"), ("Loose Leaf 100 g", "Tea Bags x40",
             "Gift Tin", "Sampler")),
    Category("Kitchen", "KIT", 6, 249, ("Cast-Iron", "Stainless", "Ceramic", "Bamboo",
             "Copper", "Nonstick", "Enamel"), ("Skillet", "Saucepan", "Chef's Knife",
             "Cutting Board", "Kettle", "French Press", "Grinder", "Mug Set")),
    Category("Office", "OFF", 2, 399, ("Ergonomic", "Recycled", "Premium", "Compact",
             "Wireless", "Adjustable"), ("Notebook", "Desk Lamp", "Chair", "Monitor Stand",
             "Pen Set", "Keyboard", "Mouse", "Planner")),
    Category("Garden", "GAR", 3, 299, ("Organic", "Heirloom", "Weatherproof", "Solar",
             "Galvanised", "Terracotta"), ("Seed Mix", "Planter", "Hose 25 m", "Pruning Shears",
             "Lantern", "Raised Bed", "Compost Bin")),
    Category("Books", "BOK", 8, 59, ("Illustrated", "Paperback", "Hardcover", "Collector's",
             "Pocket"), ("Cookbook", "Travel Guide", "Field Guide", "Novel", "Atlas",
             "Journal")),
    Category("Outdoor", "OUT", 9, 499, ("Ultralight", "Waterproof", "Insulated", "Trail",
             "Alpine", "Packable"), ("Backpack 30 l", "Tent", "Sleeping Bag", "Jacket",
             "Headlamp", "Water Bottle", "Trekking Poles")),
    Category("Electronics", "ELE", 9, 899, ("Bluetooth", "USB-C", "Noise-Cancelling",
             "Portable", "Smart", "4K"), ("Headphones", "Charger", "Speaker", "Power Bank",
             "Webcam", "Cable 2 m", "Hub")),
    Category("Home", "HOM", 5, 349, ("Linen", "Wool", "Scented", "Handwoven", "Minimalist",
             "Vintage"), ("Throw", "Candle", "Cushion", "Rug", "Vase", "Towel Set",
             "Bedding Set")),
    Category("Wellness", "WEL", 4, 149, ("Natural", "Lavender", "Vegan", "Unscented",
             "Mineral", "Herbal"), ("Soap Bar", "Body Lotion", "Bath Salts", "Yoga Mat",
             "Essential Oil", "Massage Roller")),
)  # fmt: skip


# fmt: on
# --- Public API ---------------------------------------------------------------------


def has_customers(engine: Engine) -> bool:
    """Whether the database holds any customer (trashed ones included)."""
    with engine.connect() as conn:
        return conn.execute(select(Customer.id).limit(1)).first() is not None


def default_end() -> datetime:
    """Today at 00:00 UTC: where the order history ends unless ``end`` is given."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def load(
    engine: Engine,
    *,
    customers: int,
    seed: int,
    sealer: Sealer,
    progress: Progress | None = None,
    end: datetime | None = None,
    lines_per_customer: float = DEFAULT_LINES_PER_CUSTOMER,
    products: int = DEFAULT_PRODUCTS,
) -> DemoStats:
    """Load ``customers`` customers, ``products`` products and two years of orders ending at
    ``end`` (default: today 00:00 UTC). The same seed and end give the same data (the
    sensitive fields sealed under ``sealer``'s primary key, so their stored bytes differ)."""
    started = time.perf_counter()
    report: Progress = progress or _ignore
    end = as_utc(end or default_end())
    world = World(
        rng=random.Random(seed), end=int(end.timestamp()), owners=_owner_ids(engine), sealer=sealer
    )
    stats = Counts()
    expected_orders = round(customers * lines_per_customer / MEAN_LINES)
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        sink = Sink(conn)
        world.bind(sink)
        with sink.loading():
            with conn.begin():
                sink.lock()
                world.taken_emails = _existing(
                    conn, select(Customer.email_index).where(Customer.email_index.is_not(None))
                )
                taken_skus = _existing(conn, select(Product.sku))
                world.catalog = world.products(products, sink.next_id(Product), taken_skus)
                sink.insert(Product, PRODUCT_COLUMNS, world.catalog.rows)
                sink.finish(Product)
            stats.products = len(world.catalog.rows)
            report("products", stats.products, stats.products)
            # One transaction per block keeps the WAL and memory bounded on huge loads.
            for first in range(0, customers, BLOCK):
                with conn.begin():
                    sink.lock()
                    size = min(BLOCK, customers - first)
                    _load_block(sink, world, size, lines_per_customer, stats, report,
                                customers, expected_orders)  # fmt: skip
            with conn.begin():
                sink.lock()
                orders_service.rebuild_revenue(connection=conn)
        sink.tidy()
    tickets = service_desk_demo.add_tickets(
        engine, count=min(MAX_DEMO_TICKETS, customers // 5), seed=seed, end=end
    )
    report("tickets", tickets, tickets)
    # Opportunities, their interactions and tasks for some of the demo customers.
    opportunities = pipeline_demo.load(engine, seed=seed, end=end)
    report("opportunities", opportunities, opportunities)
    return DemoStats(
        customers=stats.customers,
        products=stats.products,
        orders=stats.orders,
        order_lines=stats.lines,
        seconds=time.perf_counter() - started,
        tickets=tickets,
    )


def _ignore(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass
class Counts:
    customers: int = 0
    products: int = 0
    orders: int = 0
    lines: int = 0


def _load_block(
    sink: Sink,
    world: World,
    size: int,
    lines_per_customer: float,
    stats: Counts,
    report: Progress,
    total_customers: int,
    expected_orders: int,
) -> None:
    """One transaction: ``size`` customers with their tags, search terms and orders."""
    ids = {model: sink.next_id(model) for model in (Customer, Order, OrderLine)}
    for start in range(0, size, CHUNK):
        n = min(CHUNK, size - start)
        rows = world.customer_chunk(
            n,
            first_customer=ids[Customer],
            first_order=ids[Order],
            first_line=ids[OrderLine],
            lines_per_customer=lines_per_customer,
        )
        sink.insert(Customer, CUSTOMER_COLUMNS, rows.customers)
        sink.insert(CustomerTag, ("customer_id", "tag"), rows.tags)
        rows.terms.sort()  # in index order: appends instead of random page writes
        sink.insert(CustomerSearchTerm, ("term", "customer_id"), rows.terms)
        stats.customers += n
        report("customers", stats.customers, total_customers)
        sink.insert(Order, ORDER_COLUMNS, rows.orders)
        sink.insert(OrderLine, LINE_COLUMNS, rows.lines)
        ids[Customer] += n
        ids[Order] += len(rows.orders)
        ids[OrderLine] += len(rows.lines)
        stats.orders += len(rows.orders)
        stats.lines += len(rows.lines)
        last = stats.customers == total_customers
        report("orders", stats.orders, stats.orders if last else max(expected_orders, stats.orders))
    for model in (Customer, Order, OrderLine):
        sink.finish(model)


def _existing(conn: Connection, stmt: Select[Any]) -> set[str]:
    return {str(value) for value in conn.scalars(stmt)}


def _owner_ids(engine: Engine) -> list[int]:
    """Who owns demo customers: active sales people and managers, else new demo sales users."""
    sessions = make_sessionmaker(engine)
    with unit_of_work(sessions) as session:
        roles = (Role.SALES.value, Role.MANAGER.value)
        ids = list(
            session.scalars(
                select(User.id).where(User.role.in_(roles), User.is_active).order_by(User.id)
            )
        )
        if ids:
            return ids
        for name, email in DEMO_SALES_USERS:
            if security_service.get_user_by_email(session=session, email=email) is not None:
                continue
            user = security_service.create_user(
                session=session,
                data=UserCreate(
                    email=email, name=name, password=generate_password(), role=Role.SALES
                ),
            )
            ids.append(user.id)
            log.info("created demo sales user %s (set a password to sign in)", email)
        if not ids:
            # The demo sales users exist but were disabled or moved to another role.
            ids = list(session.scalars(select(User.id).where(User.is_active).order_by(User.id)))
    if not ids:
        raise RuntimeError("There is no active user to own the demo customers.")
    return ids


# --- Writing rows -------------------------------------------------------------------

PRODUCT_COLUMNS = ("id", "sku", "name", "category", "description", "unit_price", "currency",
                   "active", "created_at", "updated_at", "version", "deleted_at")  # fmt: skip
CUSTOMER_COLUMNS = ("id", "kind", "name", "name_sort", "email_cipher", "email_index",
                    "phone_cipher", "phone_index", "address_cipher", "birth_date_cipher",
                    "tax_id_cipher", "company_name",
                    "lifecycle_stage", "owner_id", "source", "notes", "custom", "created_at",
                    "updated_at", "version", "deleted_at", "erased_at",
                    "marketing_opt_out")  # fmt: skip
ORDER_COLUMNS = ("id", "customer_id", "status", "ordered_at", "currency", "total", "notes",
                 "created_at", "updated_at", "version", "deleted_at")  # fmt: skip
LINE_COLUMNS = ("id", "order_id", "product_id", "quantity", "unit_price", "line_total")
LOADED = (Product, Customer, CustomerTag, CustomerSearchTerm, Order, OrderLine)
LOAD_CACHE_KIB = -262_144  # 256 MiB while loading


class Sink:
    """Bulk writes through the DBAPI: executemany on SQLite, COPY on PostgreSQL.

    Values arrive as the database stores them: money as integer 1/10,000 units, and
    datetimes and JSON already run through the column type's own bind processor."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"Demo data loads into SQLite or PostgreSQL, not {self.dialect}.")
        self.max_ids: dict[str, int] = {}

    def processor(self, column: ColumnElement[Any]) -> Callable[[Any], Any]:
        """The function that turns a Python value into what the DBAPI gets for ``column``."""
        process = column.type.dialect_impl(self.conn.dialect).bind_processor(self.conn.dialect)
        return process or (lambda value: value)

    @contextmanager
    def loading(self) -> Iterator[None]:
        """SQLite: a bigger page cache while loading, so index inserts stay in memory."""
        raw: Any = self.conn.connection.driver_connection
        if self.dialect != "sqlite":
            yield
            return
        (before,) = raw.execute("PRAGMA cache_size").fetchone()
        raw.execute(f"PRAGMA cache_size={LOAD_CACHE_KIB}")
        try:
            yield
        finally:
            raw.execute(f"PRAGMA cache_size={int(before)}")

    def lock(self) -> None:
        """At the start of each transaction: keep other writers out so counted ids stay free."""
        if self.dialect == "postgresql":
            tables = ", ".join(t.__tablename__ for t in LOADED)
            self.conn.execute(text(f"LOCK TABLE {tables} IN EXCLUSIVE MODE"))

    def next_id(self, model: type[Any]) -> int:
        """The first free id of ``model``'s table (read inside the writing transaction)."""
        table: Table = model.__table__
        current = self.conn.execute(select(func.max(table.c.id))).scalar() or 0
        return int(current) + 1

    def insert(self, model: type[Any], columns: Sequence[str], rows: list[Row]) -> None:
        if not rows:
            return
        table: Table = model.__table__
        names = ", ".join(columns)
        raw: Any = self.conn.connection.driver_connection
        if self.dialect == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cur = raw.cursor()
            try:
                cur.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
            finally:
                cur.close()
        if "id" in columns:
            top = rows[-1][columns.index("id")]
            self.max_ids[table.name] = max(self.max_ids.get(table.name, 0), top)

    def finish(self, model: type[Any]) -> None:
        """PostgreSQL: move the id sequence past the ids written, so later inserts fit."""
        name = model.__tablename__
        if self.dialect == "postgresql" and name in self.max_ids:
            self.conn.execute(
                text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v)"),
                {"t": name, "v": self.max_ids[name]},
            )

    def tidy(self) -> None:
        """After the load: fresh planner statistics (PostgreSQL), a short WAL (SQLite)."""
        if self.dialect == "postgresql":
            with self.conn.begin():
                self.conn.execute(text("ANALYZE " + ", ".join(t.__tablename__ for t in LOADED)))
        else:
            raw: Any = self.conn.connection.driver_connection
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --- Generating rows ----------------------------------------------------------------


@dataclass
class Catalog:
    rows: list[Row]
    ids: list[int]
    cents: list[int]
    cum_weights: list[float]
    companion: dict[int, int]


@dataclass
class ChunkRows:
    customers: list[Row] = field(default_factory=list)
    tags: list[Row] = field(default_factory=list)
    terms: list[Row] = field(default_factory=list)
    orders: list[Row] = field(default_factory=list)
    lines: list[Row] = field(default_factory=list)


@dataclass
class Plan:
    """When a buyer is active and how keen they are, decided before their orders."""

    customer_id: int
    company: bool
    active_from: int
    active_until: int
    keenness: float


class World:
    """Everything the generator draws from: one seeded random stream, the time window."""

    def __init__(self, *, rng: random.Random, end: int, owners: list[int], sealer: Sealer) -> None:
        self.rng = rng
        self.sealer = sealer
        self.end = end
        self.start = end - WINDOW_DAYS * DAY
        self.owners = owners
        self.taken_emails: set[str] = set()
        self.email_counts: dict[str, int] = {}
        self.catalog = Catalog([], [], [], [], {})
        self.locale_weights = list(accumulate(loc.weight for loc in LOCALES))
        self.source_weights = list(accumulate(w for _s, w in SOURCES))
        self.line_weights = list(accumulate(LINE_WEIGHTS))
        self.person_qty = _cumulative(PERSON_QTY)
        self.company_qty = _cumulative(COMPANY_QTY)
        self.day_weights = [self._day_weight(d) for d in range(WINDOW_DAYS + 1)]
        self.max_day_weight = max(self.day_weights)
        self.mean_day_weight = sum(self.day_weights) / len(self.day_weights)
        self._to_db_time: Callable[[datetime], Any] = lambda value: value
        self._to_db_json: Callable[[Any], Any] = lambda value: value

    def bind(self, sink: Sink) -> None:
        self._to_db_time = sink.processor(Customer.__table__.c.created_at)
        self._to_db_json = sink.processor(Customer.__table__.c.custom)

    def _day_weight(self, day: int) -> float:
        when = datetime.fromtimestamp(self.start + day * DAY, UTC)
        weekend = 1.15 if when.weekday() >= 5 else 1.0
        return SEASON[when.month - 1] * weekend

    def db_time(self, seconds: int) -> Any:
        return self._to_db_time(datetime.fromtimestamp(seconds, UTC))

    # Products

    def products(self, n: int, first_id: int, taken_skus: set[str]) -> Catalog:
        """``n`` products over the categories, with prices and a popularity that tails off."""
        rng = self.rng
        rows: list[Row] = []
        cents: list[int] = []
        created = self.db_time(self.start - 90 * DAY)
        for i in range(n):
            cat = CATEGORIES[i % len(CATEGORIES)]
            name = f"{rng.choice(cat.adjectives)} {rng.choice(cat.nouns)}"
            pid = first_id + i
            sku = f"{cat.code}-{pid:05d}"
            while sku in taken_skus:
                sku += "X"
            price = _price(rng, cat.low, cat.high)
            cents.append(price)
            description = f"{name}: part of our {cat.name.lower()} range."
            active = rng.random() > 0.04
            units = to_storage(Decimal(price).scaleb(-2))
            rows.append((pid, sku, name, cat.name, description, units, CURRENCY, active,
                         created, created, 1, None))  # fmt: skip
        ids = [row[0] for row in rows]
        ranks = list(range(n))
        rng.shuffle(ranks)
        weights = [1.0 / (rank + 1) ** 0.9 for rank in ranks]
        companion = {pid: ids[(i + 1 + rng.randrange(3)) % n] for i, pid in enumerate(ids)}
        return Catalog(rows, ids, cents, list(accumulate(weights)), companion)

    # Customers

    def customer_chunk(
        self,
        n: int,
        *,
        first_customer: int,
        first_order: int,
        first_line: int,
        lines_per_customer: float,
    ) -> ChunkRows:
        """``n`` customers with their tags, search terms and orders."""
        out = ChunkRows()
        plans: list[Plan] = []
        for i in range(n):
            plan = self._customer(first_customer + i, out)
            if plan is not None:
                plans.append(plan)
        target_orders = n * lines_per_customer / MEAN_LINES
        self._orders(plans, target_orders, first_order, first_line, out)
        return out

    def _customer(self, cid: int, out: ChunkRows) -> Plan | None:
        rng = self.rng
        loc = LOCALES[bisect(self.locale_weights, rng.random() * self.locale_weights[-1])]
        company = rng.random() < 0.15
        if company:
            name = _company_name(rng, loc)
            email = self._email(rng.choice(COMPANY_MAILBOXES), _company_domain(name))
            company_name = None
        else:
            name, local = _person_name(rng, loc)
            company_name = _company_name(rng, loc) if rng.random() < 0.25 else None
            domain = (
                _company_domain(company_name)
                if company_name and rng.random() < 0.5
                else rng.choice(PERSON_DOMAINS)
            )
            email = self._email(local, domain)
        roll = rng.random()
        plan: Plan | None = None
        if roll < 0.12:
            stage, created = "lead", self.end - int(WINDOW_DAYS * DAY * rng.random() ** 2)
            updated = created
        elif roll < 0.2:
            stage, created = "prospect", self.end - int(WINDOW_DAYS * DAY * rng.random() ** 2)
            updated = min(self.end, created + rng.randrange(30 * DAY))
        else:
            stage, created, plan = self._buyer(cid, company)
            updated = created
        tags = self._tags(company, stage)
        keen = plan.keenness if plan else 0.0
        custom = _custom(rng, loc, company, keen)
        created_db = self.db_time(created)
        sealed = personal.sealed(
            self.sealer,
            {"email": email, "phone": _fill(rng, loc.phone), "address": _address(rng, loc)},
        )
        out.customers.append((
            cid, "company" if company else "person", name, search.normalize(name),
            sealed["email_cipher"], sealed["email_index"], sealed["phone_cipher"],
            sealed["phone_index"], sealed["address_cipher"], None, None, company_name, stage,
            rng.choice(self.owners),
            SOURCES[bisect(self.source_weights, rng.random() * self.source_weights[-1])][0],
            rng.choice(NOTES) if rng.random() < 0.05 else None, self._to_db_json(custom),
            created_db, created_db if updated == created else self.db_time(updated), 1, None, None,
            False,
        ))  # fmt: skip
        out.tags.extend((cid, tag) for tag in tags)
        out.terms.extend(
            (term, cid) for term in sorted(search.terms(name=name, company_name=company_name))
        )
        return plan

    def _buyer(self, cid: int, company: bool) -> tuple[str, int, Plan]:
        """A customer who buys: since when, until when (churners stop), and how often."""
        rng = self.rng
        window = self.end - self.start
        if rng.random() < 0.5:
            created = self.start - rng.randrange(3 * 365 * DAY)
        else:
            created = self.start + rng.randrange(window - 14 * DAY)
        active_from = max(created, self.start)
        active_until = self.end
        stage = "customer"
        if active_from < self.start + window * 0.5 and rng.random() < 0.22:
            # Churners stop somewhere in the middle of the window.
            churn_from = max(active_from + 30 * DAY, self.start + window // 4)
            active_until = churn_from + rng.randrange(
                max(DAY, self.start + window * 3 // 4 - churn_from)
            )
            stage = "churned"
        keen = rng.lognormvariate(0.0, 1.0) * (2.0 if company else 1.0)
        return stage, created, Plan(cid, company, active_from, active_until, keen)

    def _email(self, local: str, domain: str) -> str:
        base = f"{local}@{domain}"
        count = self.email_counts.get(base, 0)
        while True:
            count += 1
            email = base if count == 1 else f"{local}.{count}@{domain}"
            # Emails are told apart by blind index: the stored ones cannot be read.
            index = self.sealer.email_index(email)
            if index not in self.taken_emails:
                break
        self.email_counts[base] = count
        self.taken_emails.add(index)
        return email

    def _tags(self, company: bool, stage: str) -> list[str]:
        rng = self.rng
        picked = set(rng.sample(TAGS, k=rng.choice((0, 0, 1, 1, 1, 2, 3))))
        if company:
            picked.add("b2b")
        if stage == "churned" and rng.random() < 0.3:
            picked.add("win-back")
        return sorted(picked)

    # Orders

    def _orders(
        self, plans: list[Plan], target: float, first_order: int, first_line: int, out: ChunkRows
    ) -> None:
        """Orders as a seasonal Poisson process per buyer, scaled to hit ``target`` overall."""
        exposure = [
            p.keenness * (p.active_until - p.active_from) * self.mean_day_weight for p in plans
        ]
        rate_scale = _rate_scale(exposure, target)
        order_id, line_id = first_order, first_line
        for plan in plans:
            for when in self._order_times(plan, plan.keenness * rate_scale):
                line_id = self._order(plan, order_id, line_id, when, out)
                order_id += 1

    def _order_times(self, plan: Plan, rate: float) -> list[int]:
        rng = self.rng
        times: list[int] = []
        ceiling = rate * self.max_day_weight
        t = float(plan.active_from)
        while ceiling > 0:
            t += rng.expovariate(ceiling)
            if t >= plan.active_until:
                break
            # Thinning: keep a candidate in proportion to its day's season weight.
            if rng.random() * self.max_day_weight < self.day_weights[int(t - self.start) // DAY]:
                times.append(int(t))
        if not times:
            # A buyer has bought at least once.
            times.append(
                plan.active_from + rng.randrange(max(1, plan.active_until - plan.active_from))
            )
        return times

    def _order(self, plan: Plan, order_id: int, line_id: int, when: int, out: ChunkRows) -> int:
        rng = self.rng
        cat = self.catalog
        k = LINE_COUNTS[bisect(self.line_weights, rng.random() * self.line_weights[-1])]
        picks = rng.choices(cat.ids, cum_weights=cat.cum_weights, k=k)
        if rng.random() < COMPANION_RATE:
            picks.append(cat.companion[picks[0]])
        quantities: dict[int, int] = {}
        qty_table, qty_weights = self.company_qty if plan.company else self.person_qty
        for pid in picks:
            quantities[pid] = (
                quantities.get(pid, 0)
                + qty_table[bisect(qty_weights, rng.random() * qty_weights[-1])]
            )
        first_pid = cat.ids[0]
        total = 0
        for pid, qty in quantities.items():
            cents = cat.cents[pid - first_pid]
            if plan.company and qty >= 10:
                cents = (cents * 9 + 5) // 10  # volume discount, to the cent
            units = cents * 100  # cents to storage units (1/10,000)
            out.lines.append((line_id, order_id, pid, qty, units, units * qty))
            total += units * qty
            line_id += 1
        status = self._status(when)
        ordered = self.db_time(when)
        later = when + rng.randrange(DAY, 6 * DAY) if status in ("shipped", "refunded") else when
        updated = ordered if later == when else self.db_time(min(later, self.end))
        out.orders.append((order_id, plan.customer_id, status, ordered, CURRENCY, total, None,
                           ordered, updated, 1, None))  # fmt: skip
        return line_id

    def _status(self, when: int) -> str:
        age = self.end - when
        roll = self.rng.random()
        if age < 2 * DAY:
            return "placed" if roll < 0.4 else "paid"
        if age < 7 * DAY:
            return "paid" if roll < 0.5 else "shipped"
        if roll < 0.86:
            return "shipped"
        if roll < 0.89:
            return "paid"
        return "cancelled" if roll < 0.95 else "refunded"


# --- Small pieces -------------------------------------------------------------------


def _cumulative(table: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Values and cumulative weights, for drawing with ``bisect``."""
    return [v for v, _w in table], list(accumulate(w for _v, w in table))


def _rate_scale(exposure: Sequence[float], target: float) -> float:
    """The factor on each buyer's exposure that makes the expected orders add up to ``target``.

    Every buyer orders at least once, so a buyer expecting m orders gets m + e^-m on
    average; Newton's method from above solves sum(s*a + e^(-s*a)) = target (convex in s).
    """
    total = sum(exposure)
    if not total or target <= len(exposure):
        return 0.0  # the one order each buyer makes already meets the target
    scale = target / total
    for _ in range(20):
        excess = sum(scale * a + math.exp(-scale * a) for a in exposure) - target
        slope = sum(a * (1 - math.exp(-scale * a)) for a in exposure)
        if excess < 1e-6 * target or slope <= 0:
            break
        scale -= excess / slope
    return scale


def _price(rng: random.Random, low: float, high: float) -> int:
    """A shop price in cents between ``low`` and ``high``, ending in .99, .49 or .00."""
    value = low * (high / low) ** (rng.random() ** 1.6)
    whole = max(1, int(value))
    return whole * 100 + rng.choice((99, 99, 99, 49, 0, 95))


def _fill(rng: random.Random, pattern: str) -> str:
    """Replace '#' with random digits and '@' with random capital letters."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(rng.randrange(10)))
        elif ch == "@":
            out.append(chr(65 + rng.randrange(26)))
        else:
            out.append(ch)
    return "".join(out)


def _person_name(rng: random.Random, loc: Locale) -> tuple[str, str]:
    """A display name and the email local part made from it."""
    given, family = rng.choice(loc.given), rng.choice(loc.family)
    if loc.country == "CN":
        # Family name first; some are written in Chinese characters.
        name = HAN[family] + HAN[given] if rng.random() < 0.4 else f"{family} {given}"
    else:
        name = f"{given} {family}"
    g, f = _ascii(given), _ascii(family)
    style = rng.random()
    if style < 0.55:
        local = f"{g}.{f}"
    elif style < 0.7:
        local = f"{g}{f}"
    elif style < 0.85:
        local = f"{g[0]}.{f}"
    else:
        local = f"{g}_{f}{rng.randrange(60, 100)}"
    return name, local


def _company_name(rng: random.Random, loc: Locale) -> str:
    legal = rng.choice(loc.legal)
    style = rng.random()
    if style < 0.6:
        core = f"{rng.choice(COMPANY_STEMS)} {rng.choice(INDUSTRIES)}"
    elif style < 0.8:
        core = f"{rng.choice(loc.family)} & {rng.choice(loc.family)}"
    else:
        core = f"{rng.choice(loc.family)} {rng.choice(INDUSTRIES)}"
    return f"{core} {legal}"


def _company_domain(name: str) -> str:
    words = name.split()[:2]
    return f"{_slug_words(words)}.example"


def _slug_words(words: list[str]) -> str:
    return "".join(_ascii(w) for w in words) or "company"


_FOLD = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "ł": "l", "đ": "d", "œ": "oe"})


def _ascii(text_: str) -> str:
    """Lower-case ASCII letters and digits for an email address: 'Łukasz' -> 'lukasz'."""
    folded = unicodedata.normalize("NFKD", text_.lower().translate(_FOLD))
    return "".join(c for c in folded if c.isascii() and c.isalnum())


def _address(rng: random.Random, loc: Locale) -> dict[str, str]:
    city, postal, region = rng.choice(loc.cities)
    street, number = rng.choice(loc.streets), str(rng.randrange(1, 180))
    address = {
        "line1": f"{number} {street}" if loc.number_first else f"{street} {number}",
        "city": city,
        "postal_code": _fill(rng, postal),
        "country": loc.country,
    }
    if region:
        address["region"] = region
    return address


def _custom(rng: random.Random, loc: Locale, company: bool, keenness: float) -> dict[str, Any]:
    custom: dict[str, Any] = {"language": loc.language}
    if company:
        custom["industry"] = rng.choice(INDUSTRIES).lower()
        custom["employees"] = int(rng.lognormvariate(3.5, 1.3)) + 1
    else:
        custom["preferred_contact"] = rng.choice(CONTACT)
        custom["newsletter"] = rng.random() < 0.45
    if keenness:
        custom["loyalty_tier"] = (
            "gold" if keenness > 3 else "silver" if keenness > 1.2 else "bronze"
        )
    return custom
