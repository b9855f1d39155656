//! Infobip People: the People API's person objects (one a line) and People events, which are
//! person-level and name their person by externalId.

use super::json::Obj;
use super::table::Column;
use super::{d, p, Source};
use crate::catalog::EventDef;

/// The applicationId of every push registration: the generated world is one app.
pub const APPLICATION_ID: &str = "audience-sample";

/// A People export line for identified person row `person`, with `devices` (installation rows)
/// as its push registrations. `false` (and nothing written) for a person without externalId.
pub fn person(out: &mut Vec<u8>, src: &Source, person: usize, devices: &[usize]) -> bool {
    let r = src.persons.row(person);
    let Some(external_id) = r.str(p::EXTERNAL_USER_ID) else {
        return false;
    };
    let mut o = Obj::new(out);
    o.str("externalId", external_id);
    o.opt_str("firstName", r.str(p::FIRST_NAME));
    o.opt_str("lastName", r.str(p::LAST_NAME));
    o.opt_str("gender", r.str(p::GENDER));
    if let Some(b) = r.date(p::BIRTH_DATE) {
        o.date("birthDate", b);
    }
    o.opt_str("city", r.str(p::CITY));
    o.opt_str("country", r.str(p::COUNTRY));
    o.opt_str("preferredLanguage", r.str(p::LANGUAGE));
    if !r.col(p::TAGS).is_null(r.row) {
        o.strs("tags", &r.strs(p::TAGS));
    }
    src.persons.write_custom(&mut o.obj("customAttributes"), r);
    if let Some(t) = r.micros(p::CREATED) {
        o.time("createdAt", t);
    }
    if let Some(t) = r.micros(p::MODIFIED) {
        o.time("modifiedAt", t);
    }
    let mut contact = o.obj("contactInformation");
    {
        let mut emails = contact.arr("email");
        for e in r.strs(p::EMAILS) {
            emails.obj().str("address", e);
        }
    }
    {
        let mut phones = contact.arr("phone");
        for n in r.strs(p::PHONES) {
            phones.obj().str("number", n);
        }
    }
    let mut push = contact.arr("push");
    for &dev in devices {
        let i = src.devices.row(dev);
        let mut reg = push.obj();
        reg.str("applicationId", APPLICATION_ID);
        reg.opt_str("registrationId", i.str(d::PUSH_ID));
        reg.opt_bool("isPrimary", i.bool(d::PRIMARY));
        {
            let mut s = reg.obj("systemData");
            s.opt_str("os", i.str(d::PLATFORM));
            s.opt_str("osVersion", i.str(d::OS_VERSION));
            s.opt_str("sdkVersion", i.str(d::SDK_VERSION));
            s.opt_str("appVersion", i.str(d::APP_VERSION));
            s.opt_str("deviceManufacturer", i.str(d::MANUFACTURER));
            s.opt_str("deviceModel", i.str(d::MODEL));
            s.opt_bool("deviceSecure", i.bool(d::SECURE));
            s.opt_str("osLanguage", i.str(d::OS_LANGUAGE));
            s.opt_bool("registrationEnabled", i.bool(d::REGISTRATIONS));
            s.opt_bool("notificationsEnabled", i.bool(d::NOTIFICATIONS));
            s.opt_bool("geofencingEnabled", i.bool(d::GEOFENCING));
        }
        src.devices.write_custom(&mut reg.obj("additionalData"), i);
    }
    true
}

/// A People events line: a custom event of the person with externalId `identifier`.
pub fn event(
    out: &mut Vec<u8>,
    def: &EventDef,
    time: i64,
    identifier: &str,
    event_id: &str,
    properties: &[Column],
    row: usize,
) {
    let mut o = Obj::new(out);
    o.str("definitionId", &def.name);
    o.time("occurredTime", time);
    o.str("identifier", identifier);
    o.str("eventId", event_id);
    let mut props = o.obj("properties");
    for (p, column) in def.properties.iter().zip(properties) {
        column.write(&mut props, &p.name, row);
    }
}
