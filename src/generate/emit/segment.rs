//! Segment-spec calls: one JSON object a line, as a Segment or RudderStack export has them.
//!
//! Identity is the one piece of state: every device row remembers the anonymousId and the
//! userId its calls carry, and the lifecycle events change them (see the module above for the
//! rules). Everything else a call says comes from the snapshot's rows as they are at the as-of
//! time.

use super::json::Obj;
use super::table::{Column, Entities, Kind, Row};
use super::{d, p, Source};
use crate::catalog::EventDef;

/// The anonymousId a device's calls carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anon {
    /// No call yet.
    Unset,
    /// `anon-<person_id>`: the device belongs to an anonymous person of the snapshot.
    Person(i64),
    /// `anon-i<installation_id>`: an identified person's device before its Personalize (the
    /// anonymous person that the Personalize merges away is not in the snapshot).
    Device(i64),
    /// `anon-i<installation_id>-<micros>`: after a sign-out, when the snapshot names no
    /// anonymous owner for the device.
    SignedOut(i64, i64),
}

impl Anon {
    fn write(self, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        let _ = match self {
            Anon::Unset => Ok(()),
            Anon::Person(p) => write!(out, "anon-{p}"),
            Anon::Device(i) => write!(out, "anon-i{i}"),
            Anon::SignedOut(i, t) => write!(out, "anon-i{i}-{t}"),
        };
    }
}

#[derive(Clone, Copy)]
struct Identity {
    anon: Anon,
    /// The person row whose externalUserId the calls carry as userId.
    user: Option<u32>,
}

/// One event of the history, resolved to rows of the snapshot.
pub struct Event<'e> {
    pub def: &'e EventDef,
    pub kind: Kind,
    pub time: i64,
    /// Row of the event's person.
    pub person: usize,
    /// Row of its installation; `None` for a person-level event.
    pub device: Option<usize>,
    /// The definition's properties and the event's row in them.
    pub properties: &'e [Column],
    pub row: usize,
    pub message_id: &'e str,
}

/// Makes the Segment calls of a history, in time order.
pub struct Calls<'a> {
    src: &'a Source<'a>,
    ids: Vec<Identity>,
    /// Devices with a Personalize in the history (by row).
    personalized: Vec<bool>,
    anon: String,
    line: Vec<u8>,
}

impl<'a> Calls<'a> {
    pub fn new(src: &'a Source<'a>, personalized: Vec<bool>) -> Calls<'a> {
        let none = Identity {
            anon: Anon::Unset,
            user: None,
        };
        Calls {
            src,
            ids: vec![none; src.devices.len()],
            personalized,
            anon: String::new(),
            line: Vec::with_capacity(2048),
        }
    }

    /// The call an event becomes (exactly one per event).
    pub fn event(&mut self, e: &Event) -> &[u8] {
        self.line.clear();
        let src = self.src;
        let Some(dev) = e.device else {
            // A person-level event: a server-side track, with no device.
            let user = src.user_id(e.person);
            let anon = match user {
                Some(_) => None,
                None => {
                    Anon::Person(src.person_id(e.person)).write(&mut self.anon);
                    Some(self.anon.as_str())
                }
            };
            let mut o = head(&mut self.line, "track", e, anon, user);
            track_body(&mut o, e);
            drop(o);
            return &self.line;
        };
        let devices = &src.devices;
        let drow = devices.row(dev);
        let iid = drow.int(d::ID).unwrap_or_default();
        let id = &mut self.ids[dev];
        if id.anon == Anon::Unset {
            // The person the history gives the device's first event tells how it starts: an
            // anonymous person's device is theirs; an identified person's is anonymous until its
            // Personalize, or carries the userId at once when the history has none (it was
            // personalized before the history began).
            id.anon = if src.identified(e.person) {
                if !self.personalized[dev] {
                    id.user = Some(e.person as u32);
                }
                Anon::Device(iid)
            } else {
                Anon::Person(src.person_id(e.person))
            };
        }
        if e.kind == Kind::Personalize {
            id.user = Some(e.person as u32);
        }
        let before = *id;
        if e.kind == Kind::Depersonalize {
            // After the sign-out the device is its owner's in the installations table, the
            // anonymous person the generator made for it.
            let owner = drow.int(d::PERSON).and_then(|p| src.persons.find(p));
            id.user = None;
            id.anon = match owner {
                Some(o) if !src.identified(o) => Anon::Person(src.person_id(o)),
                _ => Anon::SignedOut(iid, e.time),
            };
        }
        before.anon.write(&mut self.anon);
        let user = before.user.and_then(|u| src.user_id(u as usize));
        let ty = if e.kind == Kind::Personalize {
            "identify"
        } else {
            "track"
        };
        let mut o = head(&mut self.line, ty, e, Some(&self.anon), user);
        if e.kind == Kind::Personalize {
            traits(&mut o, src, e.person);
        } else {
            track_body(&mut o, e);
        }
        context(&mut o, devices, drow);
        drop(o);
        &self.line
    }

    /// The identify of an identified person the history never personalizes (no device ever):
    /// userId and traits alone.
    pub fn profile(&mut self, person: usize, message_id: &str) -> &[u8] {
        self.line.clear();
        let src = self.src;
        let r = src.persons.row(person);
        let user = src.user_id(person);
        let mut o = Obj::new(&mut self.line);
        o.str("type", "identify");
        o.str("messageId", message_id);
        o.time("timestamp", r.micros(p::CREATED).unwrap_or_default());
        match user {
            Some(u) => o.str("userId", u),
            None => {
                Anon::Person(src.person_id(person)).write(&mut self.anon);
                o.str("anonymousId", &self.anon);
            }
        }
        traits(&mut o, src, person);
        drop(o);
        &self.line
    }
}

/// `type`, `messageId`, `timestamp` and the ids, in that order.
fn head<'o>(
    out: &'o mut Vec<u8>,
    ty: &str,
    e: &Event,
    anonymous_id: Option<&str>,
    user_id: Option<&str>,
) -> Obj<'o> {
    let mut o = Obj::new(out);
    o.str("type", ty);
    o.str("messageId", e.message_id);
    o.time("timestamp", e.time);
    o.opt_str("anonymousId", anonymous_id);
    o.opt_str("userId", user_id);
    o
}

/// `event` and, for custom events, `properties` by catalog name.
fn track_body(o: &mut Obj, e: &Event) {
    o.str(
        "event",
        match e.kind {
            Kind::Install => "Application Installed",
            Kind::AppLaunch => "Application Opened",
            Kind::Uninstall => "Application Uninstalled",
            Kind::Depersonalize => "Signed Out",
            Kind::Personalize | Kind::Custom => &e.def.name,
        },
    );
    if e.kind == Kind::Custom {
        let mut props = o.obj("properties");
        for (def, column) in e.def.properties.iter().zip(e.properties) {
            column.write(&mut props, &def.name, e.row);
        }
    }
}

/// The person's attributes as Segment traits (the as-of values).
fn traits(o: &mut Obj, src: &Source, person: usize) {
    let r = src.persons.row(person);
    let mut t = o.obj("traits");
    // Segment has one email and one phone; the full lists ride along when there are more.
    for (one, all, i) in [
        ("email", "emails", p::EMAILS),
        ("phone", "phones", p::PHONES),
    ] {
        let items = r.strs(i);
        if let Some(first) = items.first() {
            t.str(one, first);
        }
        if items.len() > 1 {
            t.strs(all, &items);
        }
    }
    t.opt_str("firstName", r.str(p::FIRST_NAME));
    t.opt_str("lastName", r.str(p::LAST_NAME));
    if let Some(b) = r.date(p::BIRTH_DATE) {
        t.date("birthday", b);
    }
    t.opt_str("gender", r.str(p::GENDER));
    let (city, country) = (r.str(p::CITY), r.str(p::COUNTRY));
    if city.is_some() || country.is_some() {
        let mut a = t.obj("address");
        a.opt_str("city", city);
        a.opt_str("country", country);
    }
    t.opt_str("preferredLanguage", r.str(p::LANGUAGE));
    if !r.col(p::TAGS).is_null(r.row) {
        t.strs("tags", &r.strs(p::TAGS));
    }
    if let Some(c) = r.micros(p::CREATED) {
        t.time("createdAt", c);
    }
    src.persons.write_custom(&mut t, r);
}

/// `context.device`, `os`, `app` and the audience extension `installation`.
fn context(o: &mut Obj, devices: &Entities, r: Row) {
    let mut c = o.obj("context");
    let platform = r.str(d::PLATFORM);
    {
        let mut dv = c.obj("device");
        dv.opt_str("id", r.str(d::PUSH_ID));
        // The token is the registration, present only while push is enabled.
        if r.bool(d::PUSH_ENABLED) == Some(true) {
            dv.opt_str("token", r.str(d::PUSH_ID));
        }
        dv.opt_str("manufacturer", r.str(d::MANUFACTURER));
        dv.opt_str("model", r.str(d::MODEL));
        match platform {
            Some("iOS") => dv.str("type", "ios"),
            Some("Android") => dv.str("type", "android"),
            Some(other) => dv.str("type", &other.to_lowercase()),
            None => {}
        }
    }
    {
        let mut os = c.obj("os");
        os.opt_str("name", platform);
        os.opt_str("version", r.str(d::OS_VERSION));
    }
    c.obj("app").opt_str("version", r.str(d::APP_VERSION));
    let mut i = c.obj("installation");
    i.opt_str("sdkVersion", r.str(d::SDK_VERSION));
    i.opt_bool("registrationsEnabled", r.bool(d::REGISTRATIONS));
    i.opt_bool("notificationsEnabled", r.bool(d::NOTIFICATIONS));
    i.opt_bool("geofencingEnabled", r.bool(d::GEOFENCING));
    i.opt_bool("deviceSecure", r.bool(d::SECURE));
    i.opt_str("osLanguage", r.str(d::OS_LANGUAGE));
    devices.write_custom(&mut i, r);
}
