//! A proptest generator of valid segment texts over the sample catalog: attributes of every type,
//! operators, windows, aggregates, not/or nesting.
#![allow(dead_code)]

use proptest::prelude::*;

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(items).prop_map(str::to_string)
}

fn string_test() -> impl Strategy<Value = String> {
    let field = pick(&[
        "platform",
        "state",
        "deviceManufacturer",
        "person.country",
        "firstName",
        "lastName",
        "city",
        "custom.theme",
        "person.custom.favoriteTeam",
        "gender",
    ]);
    let value = pick(&[
        "\"iOS\"",
        "\"Android\"",
        "\"HR\"",
        "\"DE\"",
        "\"Samsung\"",
        "\"Ana\"",
        "\"uninstalled\"",
        "\"personalized\"",
        "\"dark\"",
        "\"Dinamo\"",
        "\"female\"",
        "\"Zagreb\"",
    ]);
    let op = pick(&[
        "=",
        "!=",
        "contains",
        "starts with",
        "ends with",
        "in",
        "not in",
        "is set",
        "is not set",
    ]);
    (field, op, value.clone(), value).prop_map(|(f, op, v, w)| match op.as_str() {
        "in" | "not in" => format!("{f} {op} ({v}, {w})"),
        "is set" | "is not set" => format!("{f} {op}"),
        "contains" | "starts with" | "ends with" => {
            format!("{f} {op} {}\"", v.chars().take(3).collect::<String>())
        }
        _ => format!("{f} {op} {v}"),
    })
}

fn number_test() -> impl Strategy<Value = String> {
    let field = pick(&["age", "randomBucket", "person.custom.loyaltyPoints"]);
    let op = pick(&["=", "!=", "<", "<=", ">", ">="]);
    (field, op, 0i32..2000, 0i32..100).prop_map(|(f, op, a, b)| {
        let a = if f == "age" { a % 80 } else { a };
        if b % 5 == 0 {
            format!("{f} between {} and {}", a, a + b)
        } else {
            format!("{f} {op} {a}")
        }
    })
}

fn bool_test() -> impl Strategy<Value = String> {
    pick(&[
        "primaryDevice",
        "pushRegistrationEnabled",
        "notificationsEnabled",
        "deviceSecure",
        "identified",
        "custom.newsletter",
        "geofencingEnabled",
        "custom.newsletter = false",
        "primaryDevice != true",
    ])
}

fn version_test() -> impl Strategy<Value = String> {
    (
        pick(&["osVersion", "appVersion", "sdkVersion"]),
        pick(&["<", ">=", "=", "!="]),
        pick(&[
            "\"17.2\"",
            "\"9\"",
            "\"5.10\"",
            "\"4.8.1\"",
            "\"15\"",
            "\"18.6.2\"",
        ]),
    )
        .prop_map(|(f, op, v)| format!("{f} {op} {v}"))
}

fn list_test() -> impl Strategy<Value = String> {
    (
        pick(&["tags", "emails", "phones"]),
        0u8..4,
        pick(&["\"vip\"", "\"sports\"", "\"newsletter\"", "\"family\""]),
        pick(&["\"gamer\"", "\"student\"", "\"traveler\""]),
    )
        .prop_map(|(f, k, a, b)| match k {
            0 => format!("{f} has {a}"),
            1 => format!("{f} has any ({a}, {b})"),
            2 => format!("{f} has all ({a}, {b})"),
            _ => format!("{f} is set"),
        })
}

fn time_test() -> impl Strategy<Value = String> {
    (
        pick(&[
            "installedAt",
            "lastSeenAt",
            "uninstalledAt",
            "person.createdAt",
            "birthDate",
            "custom.lastPurchaseDate",
            "custom.pushOptInDate",
        ]),
        0u8..5,
        1u32..200,
    )
        .prop_map(|(f, k, n)| match k {
            0 if !f.contains("Date") => format!("{f} within {n}d"),
            0 | 1 => format!("{f} before {n}d ago"),
            2 => format!("{f} after 2026-0{}-1{}", 1 + n % 9, n % 10),
            3 => format!("{f} is set"),
            _ => format!("{f} >= 2026-0{}-01", 1 + n % 9),
        })
}

fn window() -> impl Strategy<Value = String> {
    (0u8..6, 1u32..120).prop_map(|(k, n)| match k {
        0 => String::new(),
        1 => format!(" within {n}d"),
        // The activity summary's own windows, so that its columns are read often.
        5 => format!(" within {}d", [7, 30, 90, 180, 365][n as usize % 5]),
        2 => format!(" since {n}d ago"),
        3 => format!(" since 2026-0{}-01", 1 + n % 9),
        _ => format!(
            " between 2026-0{}-01 and 2026-10-{:02}",
            1 + n % 8,
            1 + n % 28
        ),
    })
}

fn event_test() -> impl Strategy<Value = String> {
    let filter = pick(&[
        "",
        " where amount > 50",
        " where currency = \"EUR\"",
        " where category in (\"fashion\", \"home\")",
        " where amount between 10 and 40 or category = \"books\"",
    ]);
    (0u8..13, window(), filter, 0u32..6, any::<bool>()).prop_map(|(k, w, filt, n, inst)| {
        let scope = if inst { "installation." } else { "" };
        match k {
            0 => format!("{scope}count(AppLaunch{w}) >= {n}"),
            1 => format!("{scope}count(Purchase{filt}{w}) >= {}", n % 3),
            2 => format!("{scope}did(AddToCart{w})"),
            3 => format!("not {scope}did(Purchase{filt}{w})"),
            4 => format!("sum(Purchase.amount{filt}{w}) > {}", n * 40),
            5 => format!("avg(AddToCart.price{w}) >= {}", n * 10),
            6 => format!("{scope}max(Purchase.amount{filt}{w}) < {}", n * 30 + 5),
            7 => format!("last(AppLaunch{w}) before {}d ago", n * 10 + 1),
            // Over all history, the form the planner rewrites to a windowed `did`.
            8 => format!("{scope}last(AppLaunch) within {}d", n * 2 + 1),
            9 => format!("{scope}last(Purchase{filt}{w}) within {}d", n * 5 + 1),
            10 => format!("{scope}first(Purchase{filt}{w}) before {}d ago", n * 20 + 3),
            11 => match n % 2 {
                0 => format!("{scope}last(AddToCart{w}) after {}d ago", n * 4 + 2),
                _ => format!("last(Purchase{filt}{w}) after 2026-0{}-15", 4 + n % 6),
            },
            _ => format!("{scope}first(ViewProduct{w}) is not set"),
        }
    })
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        string_test(),
        number_test(),
        bool_test(),
        version_test(),
        list_test(),
        time_test(),
        event_test()
    ]
}

/// A valid segment with and/or/not nesting.
pub fn segment() -> impl Strategy<Value = String> {
    atom().prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}
