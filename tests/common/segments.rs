//! A proptest generator of valid segment texts over the sample catalog: attributes of every type,
//! operators, windows, aggregates, not/or nesting; and the patterns of events over time
//! (sequences, `then not`, regularity, stopped/restarted), count distinct, first/last
//! properties, anniversaries and `within next`.
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

/// A sequence step's event, with or without a filter on its properties.
fn seq_step() -> impl Strategy<Value = String> {
    pick(&[
        "AppLaunch",
        "AppLaunch",
        "ViewProduct",
        "ViewProduct where category = \"fashion\"",
        "ViewProduct where category in (\"electronics\", \"home\")",
        "AddToCart",
        "AddToCart",
        "AddToCart where price > 20",
        "Purchase",
        "Purchase",
        "Purchase where amount > 50",
        "Purchase where category = \"fashion\" or currency = \"EUR\"",
    ])
}

/// A step's gap: the longest time after the step before. Sessions space their events seconds
/// to minutes apart, so short gaps cut between them.
fn gap() -> impl Strategy<Value = String> {
    pick(&[
        "",
        "",
        " within 30s",
        " within 1m",
        " within 2m",
        " within 5m",
        " within 1h",
        " within 1d",
        " within 7d",
    ])
}

/// `[installation.]did(A then B … [then not Z] [window])`.
fn sequence_test() -> impl Strategy<Value = String> {
    let outer = (0u8..8, 1u32..40).prop_map(|(k, n)| match k {
        0 => format!(" within {n}d"),
        1 => format!(" since {n}d ago"),
        2 => format!(" since 2026-10-{:02}", 1 + n % 28),
        3 => format!(
            " between 2026-09-{:02} and 2026-10-{:02}",
            1 + n % 28,
            1 + (n * 7) % 28
        ),
        4 => format!(" between {n}d ago and {}d ago", n / 3),
        _ => String::new(),
    });
    (
        any::<bool>(),
        proptest::collection::vec((seq_step(), gap()), 1..=3),
        proptest::option::of((seq_step(), gap())),
        outer,
        any::<bool>(),
    )
        .prop_map(|(inst, steps, absent, outer, gapless_outer)| {
            let scope = if inst { "installation." } else { "" };
            // At least two steps, one of them perhaps absent.
            let absent = match absent {
                None if steps.len() == 1 => Some(("AppLaunch".to_string(), String::new())),
                a => a,
            };
            // The first step has no gap.
            let mut text = steps[0].0.clone();
            for (e, g) in &steps[1..] {
                text.push_str(&format!(" then {e}{g}"));
            }
            let mut last_gap = steps.len() > 1 && !steps.last().unwrap().1.is_empty();
            if let Some((z, g)) = absent {
                text.push_str(&format!(" then not {z}{g}"));
                last_gap = !g.is_empty();
            }
            // A `within` right after a gapless last step would read as that step's gap: the
            // window then goes as `since … ago` (the same range), or stays a gap on purpose.
            let outer = match outer.strip_prefix(" within ") {
                Some(d) if !last_gap && !gapless_outer => format!(" since {d} ago"),
                _ => outer,
            };
            format!("{scope}did({text}{outer})")
        })
}

/// `[installation.]count(E [where P]) op N per unit in K of the last M units`: `< 1`, `<= 0`
/// and `= 0` hold in periods without events.
fn regularity_test() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        pick(&[
            "AppLaunch",
            "AppLaunch",
            "ViewProduct",
            "AddToCart",
            "Purchase",
            "Purchase where amount > 30",
            "ViewProduct where category = \"fashion\"",
        ]),
        pick(&["=", "!=", "<", "<=", ">", ">="]),
        0u32..5,
        0u8..3,
        1u32..12,
        1u32..12,
        any::<bool>(),
    )
        .prop_map(|(inst, e, op, n, unit, a, b, the)| {
            let scope = if inst { "installation." } else { "" };
            let (unit, most) = match unit {
                0 => ("day", 14),
                1 => ("week", 9),
                _ => ("month", 3),
            };
            let m = 1 + b % most;
            let k = 1 + a % m;
            // `= 0` and `< 1` often: the empty periods.
            let (op, n) = if n == 4 { ("=", 0) } else { (op.as_str(), n) };
            let the = if the { "the " } else { "" };
            let units = if m == 1 && k == 1 {
                unit.to_string()
            } else {
                format!("{unit}s")
            };
            format!("{scope}count({e}) {op} {n} per {unit} in {k} of {the}last {m} {units}")
        })
}

/// `stopped(E for R within L)` and `restarted(E within R after B)`.
fn lapse_test() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        pick(&[
            "AppLaunch",
            "AppLaunch",
            "ViewProduct",
            "AddToCart",
            "Purchase",
            "Purchase where amount > 30",
        ]),
        1u32..20,
        1u32..40,
    )
        .prop_map(|(inst, stopped, e, r, l)| {
            let scope = if inst { "installation." } else { "" };
            // Now and then in calendar months, which the break adds to the recent length.
            match (stopped, l % 5) {
                (true, 0) => format!("{scope}stopped({e} for {r}d within 2mo)"),
                (true, _) => format!("{scope}stopped({e} for {r}d within {}d)", r + l),
                (false, 0) => format!("{scope}restarted({e} within {r}d after 1mo)"),
                (false, _) => format!("{scope}restarted({e} within {r}d after {l}d)"),
            }
        })
}

/// `count distinct(E.p …)` and the property of the first or last event.
fn event_value_test() -> impl Strategy<Value = String> {
    let filter = pick(&["", "", " where amount > 30", " where currency = \"EUR\""]);
    (0u8..14, window(), filter, 0u32..8).prop_map(|(k, w, filt, n)| match k {
        0 => format!("count distinct(ViewProduct.category{w}) >= {}", n % 5),
        1 => format!(
            "installation.count distinct(ViewProduct.category{w}) > {}",
            n % 4
        ),
        2 => format!(
            "count distinct(Purchase.category{filt}{w}) >= {}",
            n % 3 + 1
        ),
        3 => format!("count distinct(Purchase.currency{w}) = {}", n % 3),
        4 => format!("count distinct(AddToCart.sku{w}) >= {}", n % 4 + 1),
        5 => format!("count distinct(AddToCart.price{w}) < {}", n % 4 + 1),
        6 => format!("last(Purchase{filt}{w}).category = \"fashion\""),
        7 => format!("not (last(Purchase{w}).category in (\"fashion\", \"electronics\"))"),
        8 => format!("first(Purchase{filt}{w}).amount > {}", n * 15),
        9 => format!("installation.last(AddToCart{w}).price <= {}", n * 8 + 5),
        10 => format!("last(ViewProduct{w}).category != \"home\""),
        11 => format!("first(ViewProduct{w}).category starts with \"e\""),
        12 => format!("not (first(Purchase{filt}{w}).currency = \"EUR\")"),
        _ => format!("last(AddToCart{w}).sku is set"),
    })
}

/// Anniversaries (`birthday`, `anniversary of …`) and `within next` on dates and timestamps.
fn anniversary_test() -> impl Strategy<Value = String> {
    (0u8..10, 1u32..60, any::<bool>()).prop_map(|(k, n, next)| {
        let next = if next { "next " } else { "" };
        match k {
            0 | 1 => format!("birthday within {next}{n}d"),
            2 => format!("birthday within {next}{}mo", 1 + n % 3),
            // The store's dates are recent: their first anniversaries are next year.
            3 => format!(
                "anniversary of custom.lastPurchaseDate within next {}d",
                320 + n
            ),
            4 => format!(
                "anniversary of person.createdAt within next {}mo",
                10 + n % 3
            ),
            5 => format!("anniversary of installedAt within next {}mo", 9 + n % 4),
            6 => format!("custom.pushOptInDate within next {n}d"),
            7 => format!("custom.lastPurchaseDate within next {}d", n % 10),
            8 => format!("lastSeenAt within next {}d", n % 12),
            _ => format!("installedAt within next {}h", n * 3),
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
        event_test(),
        sequence_test(),
        sequence_test(),
        regularity_test(),
        lapse_test(),
        event_value_test(),
        anniversary_test(),
    ]
}

/// One pattern of events over time, count distinct, first/last property or anniversary test,
/// alone: the second edition's constructs.
pub fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        sequence_test(),
        regularity_test(),
        lapse_test(),
        event_value_test(),
        anniversary_test(),
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
