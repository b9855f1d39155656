//! Infobip People exports, one JSON object a line, as [`Call`]s: persons in the People API shape
//! ([`parse_person`]) and the People events export ([`parse_event`]). JSON values follow the
//! Segment source's rules ([`segment::value`]: strict types, objects flattened to dotted names,
//! no date inference).
//!
//! | People field | becomes |
//! | --- | --- |
//! | `externalId` (required) | the person's userId |
//! | `firstName`, `lastName`, `gender`, `birthDate`, `city`, `country`, `preferredLanguage`, `tags` | standard person attributes |
//! | `createdAt` | the person's createdAt |
//! | `modifiedAt`, else `createdAt`, else the import's default time | the call's time |
//! | `customAttributes` | custom person attributes (lists kept as lists) |
//! | `contactInformation.email[].address`, `.phone[].number` | identities |
//! | `contactInformation.push[].registrationId` | an installation: its device id and its push token |
//! | `.push[].isPrimary` | the row's primary-device hint |
//! | `.push[].systemData.os`, `.osVersion`, `.sdkVersion`, `.appVersion`, `.deviceManufacturer`, `.deviceModel`, `.osLanguage`, `.deviceSecure`, `.registrationEnabled`, `.notificationsEnabled`, `.geofencingEnabled` | installation system data |
//! | `.push[].additionalData` | installation custom attributes |
//!
//! | Events field | becomes |
//! | --- | --- |
//! | `definitionId` (required) | the event's name, as written |
//! | `occurredTime` | the call's time |
//! | `identifier` (required): the externalId, or `{"type": "EXTERNAL_ID", "value": ...}` | the person's userId |
//! | `eventId`, else `messageId` | the de-duplication id |
//! | `properties` | the event's properties (arrays as their JSON text) |
//!
//! Decisions:
//!
//! * A person row is keyed by its externalId, as the replay keys person rows; a person known
//!   only by email or phone is rejected ("missing `externalId`").
//! * The call's time orders the row among the other calls: the profile's last modification,
//!   else its creation, else `default_time`, which the import passes (its as-of, or now). A row
//!   without either time therefore has a different content hash at each import: re-importing it
//!   upserts the same values again rather than being counted as a duplicate.
//! * The registrationId is both the installation's id and its push token: in People it is the
//!   installation's only id, and a push registration is what it denotes.
//! * Read but not part of the data model, hence ignored: `applicationId` (a store holds one
//!   application), the other People fields (`middleName`, `address`, `profilePicture`, `type`,
//!   `origin`, `modifiedFrom`, other channels of `contactInformation`) and other `systemData`
//!   keys (`deviceName`, `deviceTimezoneOffset`, ...), which are the SDK's, not custom
//!   attributes. `registrationsEnabled` is accepted beside the SDK's `registrationEnabled`, and
//!   `applicationVersion` beside `appVersion`.
//! * An email or phone entry with no address or number adds nothing; a push entry with no
//!   registrationId is a reject, since the installation it describes cannot be named.
//! * Events carry no device: each is a person-level Track. So the lifecycle events of the data
//!   model (`Install`, `AppLaunch`, `Uninstall`), which need an installation, cannot come from
//!   this export; the replay rejects them by name.
//! * An identifier of another type (`EMAIL`, `PHONE`) is rejected: a device-less event is keyed
//!   by userId.

use super::segment::{self, flag, obj, quote, text, texts, Arrays, Json, Object};
use crate::import::profile::{Action, Call, Device, DeviceData, Origin, PersonDevice, Traits};

/// One person of a People export. `default_time` (µs UTC) is the call's time when the person
/// has neither `modifiedAt` nor `createdAt`.
pub fn parse_person(origin: &Origin, line: &[u8], default_time: i64) -> Result<Call, String> {
    let person = segment::object(line)?;
    let user_id = text(person.get("externalId"), "externalId")?.ok_or("missing `externalId`")?;
    let created_at = segment::time(person.get("createdAt"), "createdAt")?;
    let modified_at = segment::time(person.get("modifiedAt"), "modifiedAt")?;
    let mut traits = Traits {
        created_at,
        ..Traits::default()
    };
    let a = &mut traits.attributes;
    a.first_name = text(person.get("firstName"), "firstName")?;
    a.last_name = text(person.get("lastName"), "lastName")?;
    a.gender = text(person.get("gender"), "gender")?;
    a.birth_date = segment::date(person.get("birthDate"), "birthDate")?;
    a.city = text(person.get("city"), "city")?;
    a.country = text(person.get("country"), "country")?;
    a.preferred_language = text(person.get("preferredLanguage"), "preferredLanguage")?;
    a.tags = texts(person.get("tags"), "tags")?;
    if let Some(custom) = obj(person.get("customAttributes"), "customAttributes")? {
        for (name, v) in custom.iter() {
            segment::flatten(&mut a.custom, "custom attribute", name, v, Arrays::List)?;
        }
    }
    let mut devices = Vec::new();
    if let Some(contact) = obj(person.get("contactInformation"), "contactInformation")? {
        traits.emails = entries(contact, "email", "address")?;
        traits.phones = entries(contact, "phone", "number")?;
        for (i, entry) in list(contact, "push")?.iter().enumerate() {
            devices.push(push(entry, &format!("contactInformation.push[{i}]"))?);
        }
    }
    Ok(Call {
        origin: origin.clone(),
        time: Some(modified_at.or(created_at).unwrap_or(default_time)),
        message_id: None,
        anonymous_id: None,
        user_id: Some(user_id),
        device: None,
        action: Action::UpsertPerson { traits, devices },
    })
}

/// One line of a People events export.
pub fn parse_event(origin: &Origin, line: &[u8]) -> Result<Call, String> {
    let event = segment::object(line)?;
    let name = text(event.get("definitionId"), "definitionId")?.ok_or("missing `definitionId`")?;
    let message_id = match text(event.get("eventId"), "eventId")? {
        Some(id) => Some(id),
        None => text(event.get("messageId"), "messageId")?,
    };
    Ok(Call {
        origin: origin.clone(),
        time: segment::time(event.get("occurredTime"), "occurredTime")?,
        message_id,
        anonymous_id: None,
        user_id: Some(identifier(event.get("identifier"))?),
        device: None,
        action: Action::Track {
            event: name,
            properties: segment::properties(event.get("properties"), "properties")?,
        },
    })
}

/// The externalId an event is for: written as it is, or as `{"type": "EXTERNAL_ID", "value"}`
/// (the type may be left out).
fn identifier(json: Option<&Json>) -> Result<String, String> {
    let Some(Json::Object(map)) = json else {
        return text(json, "identifier")?.ok_or_else(|| "missing `identifier`".into());
    };
    if let Some(kind) = text(map.get("type"), "identifier.type")? {
        if !kind.eq_ignore_ascii_case("EXTERNAL_ID") {
            return Err(format!(
                "identifier of type `{}` (only EXTERNAL_ID is imported)",
                quote(&kind)
            ));
        }
    }
    text(map.get("value"), "identifier.value")?.ok_or_else(|| "missing `identifier.value`".into())
}

/// `contactInformation.<field>`: an array, or nothing.
fn list<'j, 'a>(contact: &'j Object<'a>, field: &str) -> Result<&'j [Json<'a>], String> {
    match contact.get(field) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(format!(
            "`contactInformation.{field}` is {}, not an array",
            segment::describe(other)
        )),
    }
}

/// The `key` of each entry of `contactInformation.<field>` (`email[].address`).
fn entries(contact: &Object, field: &str, key: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, entry) in list(contact, field)?.iter().enumerate() {
        let path = format!("contactInformation.{field}[{i}]");
        if let Some(entry) = obj(Some(entry), &path)? {
            out.extend(text(entry.get(key), &format!("{path}.{key}"))?);
        }
    }
    Ok(out)
}

/// A push registration: the installation, its system data and custom attributes.
fn push(entry: &Json, path: &str) -> Result<PersonDevice, String> {
    let entry = obj(Some(entry), path)?.ok_or_else(|| format!("`{path}` is null"))?;
    let id = text(
        entry.get("registrationId"),
        &format!("{path}.registrationId"),
    )?
    .ok_or_else(|| format!("missing `{path}.registrationId`"))?;
    let mut data = DeviceData::default();
    if let Some(system) = obj(entry.get("systemData"), &format!("{path}.systemData"))? {
        system_data(&mut data, system, &format!("{path}.systemData"))?;
    }
    if let Some(additional) = obj(
        entry.get("additionalData"),
        &format!("{path}.additionalData"),
    )? {
        for (name, v) in additional.iter() {
            segment::flatten(
                &mut data.custom,
                "installation attribute",
                name,
                v,
                Arrays::List,
            )?;
        }
    }
    Ok(PersonDevice {
        device: Device {
            token: Some(id.clone()),
            id,
            data,
        },
        primary: flag(entry.get("isPrimary"), &format!("{path}.isPrimary"))?,
    })
}

fn system_data(data: &mut DeviceData, system: &Object, path: &str) -> Result<(), String> {
    for (key, v) in system.iter() {
        let field = format!("{path}.{key}");
        let v = Some(v);
        match key {
            "os" => data.platform = text(v, &field)?,
            "osVersion" => data.os_version = text(v, &field)?,
            "sdkVersion" => data.sdk_version = text(v, &field)?,
            // Two spellings of one field: a null in one does not undo the other.
            "appVersion" | "applicationVersion" => {
                data.application_version = text(v, &field)?.or(data.application_version.take())
            }
            "deviceManufacturer" => data.device_manufacturer = text(v, &field)?,
            "deviceModel" => data.device_model = text(v, &field)?,
            "osLanguage" => data.os_language = text(v, &field)?,
            "deviceSecure" => data.device_secure = flag(v, &field)?,
            "registrationEnabled" | "registrationsEnabled" => {
                data.registrations_enabled = flag(v, &field)?.or(data.registrations_enabled)
            }
            "notificationsEnabled" => data.notifications_enabled = flag(v, &field)?,
            "geofencingEnabled" => data.geofencing_enabled = flag(v, &field)?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::profile::Value;
    use chrono::NaiveDate;
    use std::collections::BTreeMap;

    fn origin() -> Origin {
        Origin {
            file: "people.jsonl".into(),
            line: 3,
        }
    }

    fn us(s: &str) -> i64 {
        segment::parse_time(s).unwrap()
    }

    fn person(line: &str) -> Call {
        parse_person(&origin(), line.as_bytes(), 777).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn person_reject(line: &str) -> String {
        match parse_person(&origin(), line.as_bytes(), 777) {
            Ok(call) => panic!("{line} was accepted: {call:?}"),
            Err(reason) => reason,
        }
    }

    fn event(line: &str) -> Call {
        parse_event(&origin(), line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn event_reject(line: &str) -> String {
        match parse_event(&origin(), line.as_bytes()) {
            Ok(call) => panic!("{line} was accepted: {call:?}"),
            Err(reason) => reason,
        }
    }

    fn upsert(call: &Call) -> (&Traits, &[PersonDevice]) {
        match &call.action {
            Action::UpsertPerson { traits, devices } => (traits, devices),
            other => panic!("not a person: {other:?}"),
        }
    }

    #[test]
    fn a_person_maps_every_field() {
        let c = person(
            r#"{"externalId":"u-1","firstName":"Jane","lastName":"Smith","middleName":"M",
               "gender":"FEMALE","birthDate":"1995-02-17","city":"London","country":"UK",
               "preferredLanguage":"en","tags":["VIP","beta"],"type":"CUSTOMER",
               "customAttributes":{"Company":"Acme","Seats":12,"Trial":false,
                 "Renewal":"2025-01-01","Regions":["eu","us"],"Billing":{"plan":"pro"}},
               "contactInformation":{
                 "email":[{"address":"jane@acme.com"},{"address":"j@acme.com"},{}],
                 "phone":[{"number":"447700900123"},{"number":447700900124}],
                 "push":[{"applicationId":"app-1","registrationId":"reg-1","isPrimary":true,
                   "systemData":{"os":"Android","osVersion":"14","sdkVersion":"13.0.1",
                     "appVersion":"5.1","deviceManufacturer":"Google","deviceModel":"Pixel 8",
                     "deviceSecure":true,"osLanguage":"en","registrationEnabled":true,
                     "notificationsEnabled":false,"geofencingEnabled":false,
                     "deviceName":"Jane's phone","deviceTimezoneOffset":"+01:00"},
                   "additionalData":{"theme":"dark","badges":3,"flags":{"beta":true}}},
                   {"registrationId":"reg-2"}],
                 "facebook":[{"applicationId":"x"}]},
               "createdAt":"2021-08-20T12:53:01","modifiedAt":"2024-01-09T10:15:30.123+0000"}"#,
        );
        assert_eq!(c.origin, origin());
        assert_eq!(c.time, Some(us("2024-01-09T10:15:30.123Z")));
        assert_eq!(c.user_id.as_deref(), Some("u-1"));
        assert_eq!(
            (&c.message_id, &c.anonymous_id, &c.device),
            (&None, &None, &None)
        );
        let (traits, devices) = upsert(&c);
        assert_eq!(traits.created_at, Some(us("2021-08-20T12:53:01Z")));
        assert_eq!(traits.emails, ["jane@acme.com", "j@acme.com"]);
        assert_eq!(traits.phones, ["447700900123", "447700900124"]);
        let a = &traits.attributes;
        assert_eq!(a.first_name.as_deref(), Some("Jane"));
        assert_eq!(a.last_name.as_deref(), Some("Smith"));
        assert_eq!(a.gender.as_deref(), Some("FEMALE"));
        assert_eq!(a.birth_date, NaiveDate::from_ymd_opt(1995, 2, 17));
        assert_eq!(a.city.as_deref(), Some("London"));
        assert_eq!(a.country.as_deref(), Some("UK"));
        assert_eq!(a.preferred_language.as_deref(), Some("en"));
        assert_eq!(a.tags, ["VIP", "beta"]);
        let custom: Vec<(&str, &Value)> = a.custom.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            custom,
            [
                ("Billing.plan", &Value::Str("pro".into())),
                ("Company", &Value::Str("Acme".into())),
                ("Regions", &Value::List(vec!["eu".into(), "us".into()])),
                ("Renewal", &Value::Str("2025-01-01".into())),
                ("Seats", &Value::Num(12.0)),
                ("Trial", &Value::Bool(false)),
            ]
        );
        let mut custom = BTreeMap::new();
        custom.insert("theme".to_string(), Value::Str("dark".into()));
        custom.insert("badges".to_string(), Value::Num(3.0));
        custom.insert("flags.beta".to_string(), Value::Bool(true));
        assert_eq!(
            devices,
            [
                PersonDevice {
                    device: Device {
                        id: "reg-1".into(),
                        token: Some("reg-1".into()),
                        data: DeviceData {
                            platform: Some("Android".into()),
                            sdk_version: Some("13.0.1".into()),
                            os_version: Some("14".into()),
                            device_manufacturer: Some("Google".into()),
                            device_model: Some("Pixel 8".into()),
                            application_version: Some("5.1".into()),
                            os_language: Some("en".into()),
                            registrations_enabled: Some(true),
                            notifications_enabled: Some(false),
                            geofencing_enabled: Some(false),
                            device_secure: Some(true),
                            custom,
                        },
                    },
                    primary: Some(true),
                },
                PersonDevice {
                    device: Device {
                        id: "reg-2".into(),
                        token: Some("reg-2".into()),
                        data: DeviceData::default(),
                    },
                    primary: None,
                },
            ]
        );
    }

    #[test]
    fn a_persons_time_is_modified_else_created_else_the_default() {
        let c = person(r#"{"externalId":"u","createdAt":"2021-08-20T12:53:01Z"}"#);
        assert_eq!(c.time, Some(us("2021-08-20T12:53:01Z")));
        let c = person(r#"{"externalId":"u","modifiedAt":null}"#);
        assert_eq!(c.time, Some(777));
        let (traits, devices) = upsert(&c);
        assert_eq!(traits, &Traits::default());
        assert!(devices.is_empty());
    }

    #[test]
    fn system_data_spellings() {
        let c = person(
            r#"{"externalId":"u","contactInformation":{"push":[{"registrationId":"r",
               "systemData":{"appVersion":null,"applicationVersion":"2.0",
                 "registrationsEnabled":false,"registrationEnabled":null}}]}}"#,
        );
        let data = &upsert(&c).1[0].device.data;
        assert_eq!(data.application_version.as_deref(), Some("2.0"));
        assert_eq!(data.registrations_enabled, Some(false));
    }

    #[test]
    fn bad_persons_are_rejected_naming_the_field() {
        for (line, reason) in [
            (r#"{"firstName":"Jane"}"#, "missing `externalId`"),
            (r#"{"externalId":null}"#, "missing `externalId`"),
            (
                r#"{"externalId":{"id":1}}"#,
                "`externalId` is an object, not a string",
            ),
            (
                r#"{"externalId":"u","firstName":"Jane""#,
                "bad JSON at column 36: EOF while parsing an object",
            ),
            (
                r#""u""#,
                "a record must be a JSON object, this line is a string",
            ),
            (
                r#"{"externalId":"u","birthDate":"17.02.1995"}"#,
                "birthDate `17.02.1995` is not a date (YYYY-MM-DD)",
            ),
            (
                r#"{"externalId":"u","modifiedAt":"2024-13-01T00:00:00Z"}"#,
                "modifiedAt `2024-13-01T00:00:00Z` is not an ISO 8601 time",
            ),
            (
                r#"{"externalId":"u","createdAt":1700000000}"#,
                "`createdAt` is a number, not an ISO 8601 time string",
            ),
            (
                r#"{"externalId":"u","tags":{"a":1}}"#,
                "`tags` is an object, not a string",
            ),
            (
                r#"{"externalId":"u","customAttributes":["a"]}"#,
                "`customAttributes` is an array, not an object",
            ),
            (
                r#"{"externalId":"u","customAttributes":{"x":[[1]]}}"#,
                "custom attribute `x` is a list holding an array; a list may hold strings, \
                 numbers and booleans",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"email":"a@b.c"}}"#,
                "`contactInformation.email` is a string, not an array",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"email":["a@b.c"]}}"#,
                "`contactInformation.email[0]` is a string, not an object",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"phone":[{"number":true}]}}"#,
                "`contactInformation.phone[0].number` is a boolean, not a string",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"push":[{"registrationId":"r"},{"systemData":{}}]}}"#,
                "missing `contactInformation.push[1].registrationId`",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"push":[null]}}"#,
                "`contactInformation.push[0]` is null",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"push":[{"registrationId":"r","isPrimary":"yes"}]}}"#,
                "`contactInformation.push[0].isPrimary` is a string, not a boolean",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"push":[{"registrationId":"r","systemData":{"deviceSecure":1}}]}}"#,
                "`contactInformation.push[0].systemData.deviceSecure` is a number, not a boolean",
            ),
            (
                r#"{"externalId":"u","contactInformation":{"push":[{"registrationId":"r","additionalData":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}}]}}"#,
                "installation attribute `a.b.c.d.e.f.g.h` is nested more than 8 levels deep",
            ),
        ] {
            assert_eq!(person_reject(line), reason, "{line}");
        }
    }

    #[test]
    fn an_event_is_a_device_less_track_for_the_external_id() {
        let c = event(
            r#"{"definitionId":"Purchase","occurredTime":"2024-02-01T10:00:00.000+01:00",
               "identifier":"u-1","eventId":"e-1","messageId":"m-1",
               "properties":{"amount":10.5,"items":["a","b"],"meta":{"source":"web"}}}"#,
        );
        assert_eq!(c.origin, origin());
        assert_eq!(c.time, Some(us("2024-02-01T09:00:00Z")));
        assert_eq!(c.user_id.as_deref(), Some("u-1"));
        assert_eq!(c.message_id.as_deref(), Some("e-1"));
        assert_eq!((&c.anonymous_id, &c.device), (&None, &None));
        let mut properties = BTreeMap::new();
        properties.insert("amount".to_string(), Value::Num(10.5));
        properties.insert("items".to_string(), Value::Str(r#"["a","b"]"#.into()));
        properties.insert("meta.source".to_string(), Value::Str("web".into()));
        assert_eq!(
            c.action,
            Action::Track {
                event: "Purchase".into(),
                properties
            }
        );
    }

    #[test]
    fn event_variants() {
        let c = event(
            r#"{"definitionId":"Login","identifier":{"type":"EXTERNAL_ID","value":"u-2"},"messageId":"m-2"}"#,
        );
        assert_eq!(c.user_id.as_deref(), Some("u-2"));
        assert_eq!(c.message_id.as_deref(), Some("m-2"));
        // A missing time is for the replay to reject, with the reason every source gets.
        assert_eq!(c.time, None);
        assert!(
            matches!(&c.action, Action::Track { event, properties } if event == "Login" && properties.is_empty())
        );
        let c = event(r#"{"definitionId":"Login","identifier":{"value":12}}"#);
        assert_eq!(c.user_id.as_deref(), Some("12"));
        assert_eq!(c.message_id, None);
        let c =
            event(r#"{"definitionId":"Login","identifier":{"type":"external_id","value":"u"}}"#);
        assert_eq!(c.user_id.as_deref(), Some("u"));
    }

    #[test]
    fn bad_events_are_rejected_naming_the_field() {
        for (line, reason) in [
            (r#"{"identifier":"u"}"#, "missing `definitionId`"),
            (r#"{"definitionId":"E"}"#, "missing `identifier`"),
            (
                r#"{"definitionId":"E","identifier":{}}"#,
                "missing `identifier.value`",
            ),
            (
                r#"{"definitionId":"E","identifier":{"type":"EMAIL","value":"a@b.c"}}"#,
                "identifier of type `EMAIL` (only EXTERNAL_ID is imported)",
            ),
            (
                r#"{"definitionId":"E","identifier":[1]}"#,
                "`identifier` is an array, not a string",
            ),
            (
                r#"{"definitionId":true,"identifier":"u"}"#,
                "`definitionId` is a boolean, not a string",
            ),
            (
                r#"{"definitionId":"E","identifier":"u","occurredTime":"2024-02-01"}"#,
                "occurredTime `2024-02-01` is not an ISO 8601 time",
            ),
            (
                r#"{"definitionId":"E","identifier":"u","properties":"x"}"#,
                "`properties` is a string, not an object",
            ),
            (
                r#"{"definitionId":"E","identifier":"u","eventId":{}}"#,
                "`eventId` is an object, not a string",
            ),
            (
                r#"{"definitionId":"E" "identifier":"u"}"#,
                "bad JSON at column 21: expected `,` or `}`",
            ),
        ] {
            assert_eq!(event_reject(line), reason, "{line}");
        }
        let deep = format!(
            r#"{{"definitionId":"E","identifier":"u","properties":{{"x":{}}}}}"#,
            "[".repeat(500)
        );
        assert!(event_reject(&deep).ends_with("nested more than 128 levels deep"));
    }

    #[test]
    fn no_input_panics() {
        let shapes = [
            "null", "0", "1e308", "true", "\"\"", "[]", "[null]", "[{}]", "{}", "[[]]",
        ];
        let fields = [
            "externalId",
            "createdAt",
            "modifiedAt",
            "birthDate",
            "tags",
            "customAttributes",
            "contactInformation",
            "email",
            "phone",
            "push",
            "systemData",
            "additionalData",
            "registrationId",
            "isPrimary",
            "os",
            "definitionId",
            "identifier",
            "occurredTime",
            "properties",
            "value",
            "type",
        ];
        for field in fields {
            for shape in shapes {
                let lines = [
                    format!(r#"{{"externalId":"u","{field}":{shape}}}"#),
                    format!(r#"{{"externalId":"u","contactInformation":{{"{field}":{shape}}}}}"#),
                    format!(
                        r#"{{"externalId":"u","contactInformation":{{"push":[{{"registrationId":"r","{field}":{shape},"systemData":{{"{field}":{shape}}}}}]}}}}"#
                    ),
                    format!(
                        r#"{{"definitionId":"E","identifier":{{"{field}":{shape}}},"{field}":{shape}}}"#
                    ),
                ];
                for line in &lines {
                    let _ = parse_person(&origin(), line.as_bytes(), 0);
                    let _ = parse_event(&origin(), line.as_bytes());
                }
            }
        }
    }
}
