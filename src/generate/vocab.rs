//! Vocabularies with realistic weights: countries and their names, cities, teams and currencies;
//! device makers, models and OS versions; tags, categories.

pub struct Country {
    pub code: &'static str,
    pub weight: f64,
    pub language: &'static str,
    pub currency: &'static str,
    pub phone_prefix: &'static str,
    pub cities: &'static [&'static str],
    pub first_female: &'static [&'static str],
    pub first_male: &'static [&'static str],
    pub last: &'static [&'static str],
    pub teams: &'static [&'static str],
}

pub const COUNTRIES: &[Country] = &[
    Country {
        code: "HR",
        weight: 30.0,
        language: "hr",
        currency: "EUR",
        phone_prefix: "+385",
        cities: &[
            "Zagreb",
            "Split",
            "Rijeka",
            "Osijek",
            "Zadar",
            "Pula",
            "Varaždin",
        ],
        first_female: &[
            "Ana", "Marija", "Ivana", "Petra", "Lucija", "Andrea", "Antonija", "Maja",
        ],
        first_male: &[
            "Ivan", "Luka", "Marko", "Josip", "Tomislav", "Ante", "Andrej", "Filip",
        ],
        last: &[
            "Horvat",
            "Kovačević",
            "Babić",
            "Marić",
            "Jurić",
            "Novak",
            "Knežević",
            "Vuković",
            "Perić",
            "Matić",
        ],
        teams: &["Dinamo", "Hajduk", "Rijeka", "Osijek"],
    },
    Country {
        code: "DE",
        weight: 22.0,
        language: "de",
        currency: "EUR",
        phone_prefix: "+49",
        cities: &[
            "Berlin",
            "Hamburg",
            "München",
            "Köln",
            "Frankfurt",
            "Stuttgart",
            "Leipzig",
        ],
        first_female: &[
            "Anna", "Lena", "Hannah", "Sophie", "Marie", "Laura", "Julia", "Andrea",
        ],
        first_male: &[
            "Lukas",
            "Felix",
            "Jonas",
            "Maximilian",
            "Paul",
            "Leon",
            "Andreas",
            "Tim",
        ],
        last: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Hoffmann",
        ],
        teams: &[
            "Bayern",
            "Dortmund",
            "Leipzig",
            "Leverkusen",
            "Hamburger SV",
        ],
    },
    Country {
        code: "AT",
        weight: 8.0,
        language: "de",
        currency: "EUR",
        phone_prefix: "+43",
        cities: &["Wien", "Graz", "Linz", "Salzburg", "Innsbruck"],
        first_female: &["Anna", "Lea", "Sarah", "Katharina", "Lisa", "Anja"],
        first_male: &["Tobias", "David", "Florian", "Lukas", "Stefan", "Andreas"],
        last: &[
            "Gruber", "Huber", "Bauer", "Wagner", "Pichler", "Steiner", "Moser",
        ],
        teams: &["Rapid Wien", "Austria Wien", "Salzburg", "Sturm Graz"],
    },
    Country {
        code: "SI",
        weight: 6.0,
        language: "sl",
        currency: "EUR",
        phone_prefix: "+386",
        cities: &["Ljubljana", "Maribor", "Celje", "Koper"],
        first_female: &["Ana", "Nina", "Eva", "Maja", "Anja"],
        first_male: &["Luka", "Jan", "Žiga", "Nejc", "Anže"],
        last: &["Novak", "Horvat", "Krajnc", "Zupančič", "Kovač", "Potočnik"],
        teams: &["Olimpija", "Maribor", "Celje"],
    },
    Country {
        code: "RS",
        weight: 6.0,
        language: "sr",
        currency: "RSD",
        phone_prefix: "+381",
        cities: &["Beograd", "Novi Sad", "Niš", "Kragujevac"],
        first_female: &["Milica", "Jelena", "Ana", "Teodora", "Andjela"],
        first_male: &["Nikola", "Stefan", "Marko", "Aleksandar", "Lazar"],
        last: &[
            "Jovanović",
            "Petrović",
            "Nikolić",
            "Marković",
            "Đorđević",
            "Ilić",
        ],
        teams: &["Crvena zvezda", "Partizan", "Vojvodina"],
    },
    Country {
        code: "GB",
        weight: 10.0,
        language: "en",
        currency: "GBP",
        phone_prefix: "+44",
        cities: &[
            "London",
            "Manchester",
            "Birmingham",
            "Leeds",
            "Glasgow",
            "Bristol",
        ],
        first_female: &["Olivia", "Amelia", "Isla", "Emily", "Ava", "Andrea"],
        first_male: &["Oliver", "George", "Harry", "Jack", "Noah", "Andrew"],
        last: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans",
        ],
        teams: &[
            "Arsenal",
            "Liverpool",
            "Manchester United",
            "Chelsea",
            "Celtic",
        ],
    },
    Country {
        code: "US",
        weight: 12.0,
        language: "en",
        currency: "USD",
        phone_prefix: "+1",
        cities: &[
            "New York",
            "Chicago",
            "Los Angeles",
            "Houston",
            "Seattle",
            "Boston",
        ],
        first_female: &["Emma", "Olivia", "Ava", "Mia", "Sophia", "Andrea"],
        first_male: &["Liam", "Noah", "James", "Ethan", "Mason", "Anthony"],
        last: &[
            "Johnson",
            "Miller",
            "Davis",
            "Garcia",
            "Rodriguez",
            "Martinez",
            "Anderson",
        ],
        teams: &[
            "LA Galaxy",
            "Inter Miami",
            "Seattle Sounders",
            "NY Red Bulls",
        ],
    },
    Country {
        code: "PL",
        weight: 6.0,
        language: "pl",
        currency: "PLN",
        phone_prefix: "+48",
        cities: &["Warszawa", "Kraków", "Wrocław", "Gdańsk", "Poznań"],
        first_female: &["Zuzanna", "Julia", "Maja", "Anna", "Aleksandra"],
        first_male: &["Antoni", "Jakub", "Jan", "Szymon", "Andrzej"],
        last: &[
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kamiński",
            "Lewandowski",
        ],
        teams: &["Legia", "Lech Poznań", "Wisła Kraków"],
    },
];

/// (platform, share, manufacturers with shares)
pub const PLATFORMS: &[(&str, f64)] = &[("Android", 70.0), ("iOS", 28.0), ("Huawei", 2.0)];

pub const ANDROID_MAKERS: &[(&str, f64)] = &[
    ("Samsung", 38.0),
    ("Xiaomi", 16.0),
    ("Google", 8.0),
    ("Oppo", 7.0),
    ("Motorola", 7.0),
    ("OnePlus", 6.0),
    ("Vivo", 6.0),
    ("Realme", 5.0),
    ("Nokia", 4.0),
    ("Sony", 3.0),
];

pub fn models(maker: &str) -> &'static [&'static str] {
    match maker {
        "Samsung" => &[
            "SM-S928B Galaxy S24 Ultra",
            "SM-S921B Galaxy S24",
            "SM-S911B Galaxy S23",
            "SM-A546B Galaxy A54",
            "SM-A556B Galaxy A55",
            "SM-A155F Galaxy A15",
            "SM-G991B Galaxy S21",
            "SM-F731B Galaxy Z Flip5",
        ],
        "Xiaomi" => &[
            "Redmi Note 13 Pro",
            "Redmi Note 12",
            "Xiaomi 14",
            "Xiaomi 13T",
            "POCO X6 Pro",
            "Redmi 13C",
        ],
        "Google" => &[
            "Pixel 9",
            "Pixel 9 Pro",
            "Pixel 8",
            "Pixel 8a",
            "Pixel 7a",
            "Pixel 10",
        ],
        "Oppo" => &["Reno12 Pro", "A79 5G", "Find X8"],
        "Motorola" => &["moto g84", "moto g54", "edge 50 pro", "razr 50"],
        "OnePlus" => &["OnePlus 12", "OnePlus Nord 4", "OnePlus 13"],
        "Vivo" => &["V30", "Y36", "X200"],
        "Realme" => &["realme 12 Pro", "realme C67", "GT 6"],
        "Nokia" => &["G42 5G", "X30 5G", "C32"],
        "Sony" => &["Xperia 1 VI", "Xperia 10 VI"],
        "Apple" => &[
            "iPhone 17 Pro",
            "iPhone 17",
            "iPhone 16 Pro",
            "iPhone 16",
            "iPhone 15 Pro",
            "iPhone 15",
            "iPhone 14",
            "iPhone 13",
            "iPhone 12",
            "iPhone SE (3rd generation)",
            "iPhone 11",
        ],
        "Huawei" => &["P60 Pro", "Mate 60 Pro", "nova 12", "P40 lite", "Mate X5"],
        _ => &["unknown"],
    }
}

/// OS versions with adoption shares (newest first).
pub fn os_versions(platform: &str) -> &'static [(&'static str, f64)] {
    match platform {
        "iOS" => &[
            ("26.1", 24.0),
            ("26.0.1", 14.0),
            ("18.7.2", 18.0),
            ("18.6.2", 12.0),
            ("17.7.10", 14.0),
            ("17.2", 6.0),
            ("16.7.12", 8.0),
            ("15.8.4", 4.0),
        ],
        "Huawei" => &[
            ("4.2.0", 35.0),
            ("4.0.0", 30.0),
            ("3.0.0", 20.0),
            ("12", 15.0),
        ],
        _ => &[
            ("16", 18.0),
            ("15", 30.0),
            ("14", 24.0),
            ("13", 14.0),
            ("12", 8.0),
            ("11", 4.0),
            ("10", 2.0),
            ("9", 0.5),
        ],
    }
}

/// App releases, oldest first, with how many days before the as-of time each shipped.
pub const APP_RELEASES: &[(&str, i64)] = &[
    ("4.9.2", 420),
    ("5.0.0", 360),
    ("5.1.0", 330),
    ("5.2.1", 300),
    ("5.3.0", 270),
    ("5.4.0", 240),
    ("5.5.2", 210),
    ("5.6.0", 180),
    ("5.7.1", 150),
    ("5.8.0", 120),
    ("5.9.0", 90),
    ("5.10.1", 60),
    ("5.11.2", 35),
    ("5.12.0", 12),
];

pub const SDK_VERSIONS: &[(&str, f64)] = &[("4.8.1", 55.0), ("4.7.3", 30.0), ("4.6.0", 15.0)];

pub const TAGS: &[(&str, f64)] = &[
    ("newsletter", 30.0),
    ("sports", 22.0),
    ("vip", 6.0),
    ("bargain-hunter", 14.0),
    ("early-adopter", 8.0),
    ("family", 12.0),
    ("student", 9.0),
    ("traveler", 10.0),
    ("gamer", 8.0),
    ("foodie", 9.0),
    ("fashion", 11.0),
    ("beta-tester", 2.0),
];

pub const CATEGORIES: &[(&str, f64)] = &[
    ("electronics", 18.0),
    ("fashion", 24.0),
    ("home", 14.0),
    ("sports", 12.0),
    ("beauty", 10.0),
    ("books", 7.0),
    ("toys", 6.0),
    ("grocery", 9.0),
];

pub const THEMES: &[(&str, f64)] = &[("system", 50.0), ("dark", 32.0), ("light", 18.0)];

pub const GENDERS: &[(&str, f64)] = &[("female", 48.0), ("male", 46.0), ("other", 1.5)];

pub const EMAIL_DOMAINS: &[(&str, f64)] = &[
    ("gmail.com", 55.0),
    ("outlook.com", 12.0),
    ("yahoo.com", 8.0),
    ("icloud.com", 12.0),
    ("gmx.de", 5.0),
    ("t-com.hr", 4.0),
    ("proton.me", 4.0),
];
