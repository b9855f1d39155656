//! The generated world written again as the sources `audience import` reads, so an import can
//! be checked against a known answer: import the streams into a fresh store, and every segment
//! must find the same audience (by public ids) as on the generated snapshot.
//!
//! The emitters read the *published* snapshot (the files its manifest lists), not the
//! generator's memory, so they work on any store. Persons and installations are read whole (by
//! column, a few hundred bytes a row); the history is streamed one partition period at a time,
//! its events merged from all of the period's files into time order, with a little identity
//! state per installation. Output directories are written under a hidden name and renamed
//! into place when complete, so a killed run never leaves a directory that looks whole (the
//! import skips hidden files).
//!
//! # `segment-jsonl`: `<dir>/segment/events-YYYY-MM-DD.jsonl.gz`
//! Segment-spec calls, one a line, one gzip file per UTC day, lines in time order. Every call
//! has `type`, `messageId` (`<Event>-<installation_id>-<micros>-<n>`, or `p<person_id>` in
//! place of the installation for a call without a device; `n` tells apart equal ones),
//! `timestamp` (RFC 3339, microseconds, `Z`), `anonymousId` and/or `userId`.
//! * A device call carries `context.device{id, token?, manufacturer, model, type}`,
//!   `context.os{name, version}`, `context.app{version}` and the audience extension
//!   `context.installation{sdkVersion, registrationsEnabled, notificationsEnabled,
//!   geofencingEnabled, deviceSecure, osLanguage, <custom attributes by catalog name>}`.
//!   `device.id` is the installation's pushRegistrationId; `device.token` is the same value,
//!   present only when pushRegistrationEnabled.
//! * Events: Install, AppLaunch and Uninstall are `track` `Application Installed / Opened /
//!   Uninstalled`; custom events are `track` calls named as the catalog names them, with their
//!   properties by catalog name; a person-level event (no installation) is a `track` without
//!   context.
//! * Identity: a device starts anonymous. Its anonymousId is `anon-<person_id>` when its first
//!   event is an anonymous person's, else (an identified person's device before its
//!   Personalize) `anon-i<installation_id>`. A Personalize is an `identify` with the person's
//!   `userId` (externalUserId), the device's anonymousId and the person's traits; the device's
//!   later calls carry both ids. A Depersonalize is a `track` `Signed Out` with both ids; later
//!   calls carry only `anon-<person_id>` of the device's owner in the installations table (the
//!   anonymous person the generator made for it).
//! * Traits: `email` (the first), `emails` (all, when more than one), `phone`, `phones`
//!   likewise, `firstName`, `lastName`, `birthday` (YYYY-MM-DD), `gender`, `address{city,
//!   country}`, `preferredLanguage`, `tags`, `createdAt`, and custom attributes by catalog name
//!   (dates as YYYY-MM-DD).
//! * An identified person whom no Personalize names (no device ever) gets one `identify`
//!   without context at their createdAt, so that they exist.
//!
//! # `infobip`: `<dir>/infobip/people.jsonl.gz` and `<dir>/infobip/events-YYYY-MM-DD.jsonl.gz`
//! * People: one identified person a line in the People API shape: `externalId`, `firstName`,
//!   `lastName`, `gender` (as stored), `birthDate`, `city`, `country`, `preferredLanguage`,
//!   `tags`, `customAttributes{}`, `createdAt`, `modifiedAt`, `contactInformation{email:
//!   [{address}], phone: [{number}], push: [...]}`. `push` lists the person's installations
//!   that are not uninstalled: `{applicationId: "audience-sample", registrationId:
//!   <pushRegistrationId>, isPrimary, systemData{os, osVersion, sdkVersion, appVersion,
//!   deviceManufacturer, deviceModel, deviceSecure, osLanguage, registrationEnabled (the
//!   installation's registrationsEnabled), notificationsEnabled, geofencingEnabled},
//!   additionalData{<installation custom attributes>}}`.
//! * Events: `{definitionId, occurredTime, identifier: <externalId>, eventId, properties}` for
//!   the custom events of identified persons, one file per day, in time order (eventId as
//!   Segment's messageId).
//!
//! What each format cannot say is listed by [`Format::gaps`] (the round-trip test prints it).

mod infobip;
mod json;
mod out;
mod segment;
mod table;
#[cfg(test)]
mod tests;

use crate::base::progress::Progress;
use crate::base::time::date_of;
use crate::catalog::{Catalog, Entity};
use crate::error::{Error, IoContext, Result};
use crate::store::manifest::EventFile;
use crate::store::Snapshot;
use chrono::NaiveDate;
use out::{Days, Files};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use table::{Entities, Kind, Period};

/// A source format the emitters write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Segment-spec JSON lines (`segment/`).
    SegmentJsonl,
    /// Infobip People export and People events (`infobip/`).
    Infobip,
}

/// What Segment-spec calls cannot carry of a generated snapshot, or carry differently.
const SEGMENT_GAPS: &[&str] = &[
    "person.modifiedAt: a call has no field for it; the import stamps the time of the person's \
     last change, the generator draws a time between createdAt and the as-of time",
    "installation.primaryDevice: no field; the import makes the most recently active installation \
     primary, the generator the most recently installed one that is not uninstalled (of every \
     person, anonymous ones too)",
    "installation.pushRegistrationEnabled of uninstalled installations: the token says it, but the \
     import derives it as a token on an installation that is not uninstalled, while the \
     generator's flag does not change on uninstall",
    "personId and installationId (the store's keys) are not carried: installations are named by \
     context.device.id (their pushRegistrationId), anonymous persons only by anonymousId \
     `anon-<person_id>`, which the import keeps as a replay key and not as a public id; the \
     anonymous person a sign-out creates is named only from the device's next call on",
    "the snapshot's as-of time and history start: the import's as-of defaults to the newest \
     call, so a round trip passes the generated snapshot's --as-of",
    "attribute history: each call carries the installation's as-of attributes and each identify \
     the person's as-of traits (the snapshot holds no earlier values either)",
    "persons and installations without events: an anonymous person or an installation with no \
     event in the history has no call to appear in (the generator makes none; identified \
     persons without a Personalize get a device-less identify at createdAt)",
    "attributes of anonymous persons are not emitted (the generator gives them none)",
    "types: JSON has no date or timestamp, so dates travel as YYYY-MM-DD and times as RFC 3339 \
     strings that the import must recognize to type custom attributes (lastPurchaseDate, \
     pushOptInDate) as dates; an attribute or property null everywhere never appears, so the \
     imported catalog lacks it",
    "a device that is an identified person's from its first event without a Personalize in the \
     history (personalized before the history began, or in the generator's last second) \
     carries the userId from its first call, so the import records a Personalize the snapshot \
     lacks",
];

/// What an Infobip People export and People events cannot carry of a generated snapshot.
const INFOBIP_GAPS: &[&str] = &[
    "anonymous persons: the People export holds identified persons with an externalId only, so \
     anonymous persons, their installations and their events are absent",
    "lifecycle events: Install, AppLaunch, Uninstall, Personalize and Depersonalize are not \
     People events; only custom events are exported",
    "installation attribution: People events are person-level, so installation-scoped event \
     conditions find none of them",
    "uninstalled installations, and installations that left the person (depersonalized, now an \
     anonymous person's): push lists the person's installations that are not uninstalled",
    "installation installedAt, lastSeenAt, uninstalledAt and state: no field; the import stamps \
     its own",
    "installation.pushRegistrationEnabled: no field (systemData.registrationEnabled carries \
     registrationsEnabled; registrationId is the pushRegistrationId)",
    "personId and installationId (the store's keys) are not carried: persons are named by \
     externalId, installations by registrationId",
    "the snapshot's as-of time and history start (the import's as-of defaults to the newest \
     event, so a round trip passes --as-of)",
    "types: dates travel as YYYY-MM-DD and times as RFC 3339 strings that the import must \
     recognize to type custom attributes as dates; an attribute or property null everywhere \
     never appears",
];

impl Format {
    pub const ALL: [Format; 2] = [Format::SegmentJsonl, Format::Infobip];

    /// The name `--emit` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::SegmentJsonl => "segment-jsonl",
            Format::Infobip => "infobip",
        }
    }

    /// The directory under the emit directory that holds the format's files.
    pub fn dir_name(self) -> &'static str {
        match self {
            Format::SegmentJsonl => "segment",
            Format::Infobip => "infobip",
        }
    }

    /// What of a generated snapshot the format cannot express, one sentence each, with how
    /// the import then differs from the generator.
    pub fn gaps(self) -> &'static [&'static str] {
        match self {
            Format::SegmentJsonl => SEGMENT_GAPS,
            Format::Infobip => INFOBIP_GAPS,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EmitOptions {
    pub formats: Vec<Format>,
    /// Files compressing at once (the lines are made on one thread).
    pub threads: usize,
    /// Advanced by partition periods of history written.
    pub progress: Progress,
}

/// What one format's emitter wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub format: Format,
    /// The format's directory (`<dir>/segment`, `<dir>/infobip`).
    pub dir: PathBuf,
    pub files: usize,
    pub lines: u64,
    /// Lines per event definition of the snapshot that the format carries.
    pub events: BTreeMap<String, u64>,
    /// Lines that are a person rather than an event: Segment's device-less identifies, the
    /// People export's persons.
    pub persons: u64,
}

/// Fails when an output directory of `formats` under `dir` exists already: a second run must
/// not mix its days with an earlier one's.
pub fn check_targets(dir: &Path, formats: &[Format]) -> Result<()> {
    for f in formats {
        let target = dir.join(f.dir_name());
        if target.exists() {
            return Err(Error::Invalid(format!(
                "{} exists already; remove it or emit into another directory",
                target.display()
            )));
        }
    }
    Ok(())
}

/// Writes `snapshot` in each of `opts.formats` under `dir` (see the module documentation).
pub fn emit(snapshot: &Snapshot, dir: &Path, opts: &EmitOptions) -> Result<Vec<Written>> {
    let mut formats = opts.formats.clone();
    formats.sort();
    formats.dedup();
    check_targets(dir, &formats)?;
    std::fs::create_dir_all(dir).at(dir)?;
    let partial = |f: Format| dir.join(format!(".{}.partial", f.dir_name()));
    for &f in &formats {
        let p = partial(f);
        if p.exists() {
            // Left by a run that was killed: never published, so ours to remove.
            std::fs::remove_dir_all(&p).at(&p)?;
        }
    }
    let src = Source::load(snapshot)?;
    let segment = formats.contains(&Format::SegmentJsonl);
    let infobip = formats.contains(&Format::Infobip);
    let mut pass = Pass::new(
        &src,
        segment.then(|| partial(Format::SegmentJsonl)),
        infobip.then(|| partial(Format::Infobip)),
        opts.threads,
    )?;
    let result = pass.run(&opts.progress);
    let (segment_files, infobip_files) = (pass.segment.take(), pass.infobip.take());
    // A compressor's own error says more than the closed channel the formatter saw.
    for files in [segment_files, infobip_files].into_iter().flatten() {
        files.finish()?;
    }
    result?;
    let mut written = Vec::new();
    for f in formats {
        let target = dir.join(f.dir_name());
        std::fs::rename(partial(f), &target).at(&target)?;
        let (days, persons) = match f {
            Format::SegmentJsonl => (&pass.segment_days, pass.profiles),
            Format::Infobip => (&pass.infobip_days, pass.people),
        };
        let counts = match f {
            Format::SegmentJsonl => &pass.segment_counts,
            Format::Infobip => &pass.infobip_counts,
        };
        let events = src
            .catalog
            .events
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(e, n)| (e.name.clone(), *n))
            .collect();
        written.push(Written {
            format: f,
            dir: target,
            files: days.files + usize::from(f == Format::Infobip),
            lines: days.lines + if f == Format::Infobip { pass.people } else { 0 },
            events,
            persons,
        });
    }
    Ok(written)
}

/// Positions of the person attributes the emitters read (see [`PERSON_ATTRIBUTES`]).
mod p {
    pub const EXTERNAL_USER_ID: usize = 2;
    pub const EMAILS: usize = 3;
    pub const PHONES: usize = 4;
    pub const FIRST_NAME: usize = 5;
    pub const LAST_NAME: usize = 6;
    pub const GENDER: usize = 7;
    pub const BIRTH_DATE: usize = 8;
    pub const COUNTRY: usize = 9;
    pub const CITY: usize = 10;
    pub const LANGUAGE: usize = 11;
    pub const TAGS: usize = 12;
    pub const CREATED: usize = 13;
    pub const MODIFIED: usize = 14;
    pub const IDENTIFIED: usize = 1;
}

const PERSON_ATTRIBUTES: [&str; 15] = [
    "personId",
    "identified",
    "externalUserId",
    "emails",
    "phones",
    "firstName",
    "lastName",
    "gender",
    "birthDate",
    "country",
    "city",
    "preferredLanguage",
    "tags",
    "createdAt",
    "modifiedAt",
];

/// Positions of the installation attributes the emitters read (see
/// [`INSTALLATION_ATTRIBUTES`]).
mod d {
    pub const ID: usize = 0;
    pub const PUSH_ID: usize = 1;
    pub const PERSON: usize = 2;
    pub const PLATFORM: usize = 3;
    pub const SDK_VERSION: usize = 4;
    pub const OS_VERSION: usize = 5;
    pub const MANUFACTURER: usize = 6;
    pub const MODEL: usize = 7;
    pub const APP_VERSION: usize = 8;
    pub const OS_LANGUAGE: usize = 9;
    pub const PUSH_ENABLED: usize = 10;
    pub const REGISTRATIONS: usize = 11;
    pub const NOTIFICATIONS: usize = 12;
    pub const GEOFENCING: usize = 13;
    pub const SECURE: usize = 14;
    pub const PRIMARY: usize = 15;
    pub const UNINSTALLED: usize = 16;
}

const INSTALLATION_ATTRIBUTES: [&str; 17] = [
    "installationId",
    "pushRegistrationId",
    crate::catalog::PERSON_ID,
    "platform",
    "sdkVersion",
    "osVersion",
    "deviceManufacturer",
    "deviceModel",
    "applicationVersion",
    "osLanguage",
    "pushRegistrationEnabled",
    "registrationsEnabled",
    "notificationsEnabled",
    "geofencingEnabled",
    "deviceSecure",
    "primaryDevice",
    "uninstalledAt",
];

/// The snapshot's persons and installations, read once.
pub struct Source<'a> {
    snapshot: &'a Snapshot,
    catalog: &'a Catalog,
    persons: Entities,
    devices: Entities,
}

impl<'a> Source<'a> {
    fn load(snapshot: &'a Snapshot) -> Result<Source<'a>> {
        Ok(Source {
            snapshot,
            catalog: &snapshot.manifest.catalog,
            persons: Entities::load(snapshot, Entity::Person, &PERSON_ATTRIBUTES)?,
            devices: Entities::load(snapshot, Entity::Installation, &INSTALLATION_ATTRIBUTES)?,
        })
    }

    fn identified(&self, person: usize) -> bool {
        self.persons.row(person).bool(p::IDENTIFIED) == Some(true)
    }

    fn person_id(&self, person: usize) -> i64 {
        self.persons.row(person).int(0).unwrap_or_default()
    }

    /// The userId of an identified person: their externalUserId.
    fn user_id(&self, person: usize) -> Option<&str> {
        if !self.identified(person) {
            return None;
        }
        self.persons.row(person).str(p::EXTERNAL_USER_ID)
    }

    fn person_row(&self, id: i64, path: &str) -> Result<usize> {
        self.persons.find(id).ok_or_else(|| {
            Error::data(
                self.snapshot.path(path),
                format!("an event names person {id}, who is not in the persons table"),
            )
        })
    }

    fn device_row(&self, id: i64, path: &str) -> Result<usize> {
        self.devices.find(id).ok_or_else(|| {
            Error::data(
                self.snapshot.path(path),
                format!(
                    "an event names installation {id}, which is not in the installations table"
                ),
            )
        })
    }
}

/// The one pass over the history that writes every format's day files.
struct Pass<'a> {
    src: &'a Source<'a>,
    segment: Option<Files>,
    infobip: Option<Files>,
    segment_days: Days,
    infobip_days: Days,
    /// Lines per catalog event.
    segment_counts: Vec<u64>,
    infobip_counts: Vec<u64>,
    /// Device-less identifies written.
    profiles: u64,
    /// People lines written.
    people: u64,
    /// The Infobip line being made.
    line: Vec<u8>,
}

impl<'a> Pass<'a> {
    fn new(
        src: &'a Source<'a>,
        segment: Option<PathBuf>,
        infobip: Option<PathBuf>,
        threads: usize,
    ) -> Result<Pass<'a>> {
        let n = src.catalog.events.len();
        Ok(Pass {
            src,
            segment: segment.map(|d| Files::new(&d, threads)).transpose()?,
            infobip: infobip.map(|d| Files::new(&d, threads)).transpose()?,
            segment_days: Days::new("events"),
            infobip_days: Days::new("events"),
            segment_counts: vec![0; n],
            infobip_counts: vec![0; n],
            profiles: 0,
            people: 0,
            line: Vec::with_capacity(1024),
        })
    }

    fn run(&mut self, progress: &Progress) -> Result<()> {
        let src = self.src;
        let snapshot = src.snapshot;
        if self.infobip.is_some() {
            self.people()?;
        }
        // Whom the history personalizes, known ahead: a device with no Personalize starts with
        // its userId, and a person with none gets an identify of their own.
        let mut personalized_devices = vec![false; src.devices.len()];
        let mut personalized_persons = vec![false; src.persons.len()];
        for (person, device) in table::who(snapshot, "Personalize")? {
            if let Some(p) = src.persons.find(person) {
                personalized_persons[p] = true;
            }
            if let Some(d) = device.and_then(|d| src.devices.find(d)) {
                personalized_devices[d] = true;
            }
        }
        let mut alone: Vec<(i64, usize)> = (0..src.persons.len())
            .filter(|&p| src.identified(p) && !personalized_persons[p])
            .map(|p| (src.persons.row(p).micros(p::CREATED).unwrap_or_default(), p))
            .collect();
        alone.sort_unstable();
        let mut alone = alone.into_iter().peekable();
        let mut calls = segment::Calls::new(src, personalized_devices);

        let mut periods: BTreeMap<NaiveDate, Vec<&EventFile>> = BTreeMap::new();
        for e in &snapshot.manifest.events {
            periods.entry(e.period).or_default().push(e);
        }
        progress.restart("emitting source formats (periods)", periods.len() as u64);
        let mut id = String::new();
        let mut previous = None;
        let mut n = 0u32;
        for files in periods.values() {
            let period = Period::load(snapshot, files)?;
            for entry in &period.order {
                while let Some((t, p)) = alone.next_if(|(t, _)| *t <= entry.time) {
                    self.profile(&mut calls, t, p)?;
                }
                let batch = &period.batches[entry.batch as usize];
                let def = &src.catalog.events[batch.event];
                let path = &files[0].file.path;
                let person = src.person_row(entry.person, path)?;
                let device = match entry.installation {
                    i64::MIN => None,
                    i => Some(src.device_row(i, path)?),
                };
                // The id names the event, its installation (else its person) and its instant;
                // `n` counts equal ones, which sort next to each other.
                let subject = match device {
                    Some(_) => entry.installation,
                    None => entry.person,
                };
                let key = (entry.event, device.is_some(), subject, entry.time);
                n = if previous == Some(key) { n + 1 } else { 0 };
                previous = Some(key);
                id.clear();
                let _ = match device {
                    Some(_) => write!(id, "{}-{}-{}-{n}", def.name, entry.installation, entry.time),
                    None => write!(id, "{}-p{}-{}-{n}", def.name, entry.person, entry.time),
                };
                let event = segment::Event {
                    def,
                    kind: Kind::of(def),
                    time: entry.time,
                    person,
                    device,
                    properties: &batch.properties,
                    row: entry.row as usize,
                    message_id: &id,
                };
                let day = date_of(entry.time);
                if let Some(files) = self.segment.as_mut() {
                    self.segment_days.line(files, day, calls.event(&event))?;
                    self.segment_counts[batch.event] += 1;
                }
                if let Some(files) = self.infobip.as_mut() {
                    let identifier = src.user_id(person);
                    if let (Kind::Custom, Some(identifier)) = (event.kind, identifier) {
                        let line = &mut self.line;
                        line.clear();
                        infobip::event(
                            line,
                            def,
                            entry.time,
                            identifier,
                            &id,
                            &batch.properties,
                            event.row,
                        );
                        self.infobip_days.line(files, day, line)?;
                        self.infobip_counts[batch.event] += 1;
                    }
                }
            }
            progress.add(1);
        }
        for (t, p) in alone {
            self.profile(&mut calls, t, p)?;
        }
        self.segment_days.close()?;
        self.infobip_days.close()
    }

    /// The device-less identify of a person the history never personalizes.
    fn profile(&mut self, calls: &mut segment::Calls, time: i64, person: usize) -> Result<()> {
        let Some(files) = self.segment.as_mut() else {
            return Ok(());
        };
        let id = format!("identify-p{}-{time}-0", self.src.person_id(person));
        self.segment_days
            .line(files, date_of(time), calls.profile(person, &id))?;
        self.profiles += 1;
        Ok(())
    }

    /// `people.jsonl.gz`: every identified person with their installations that are not
    /// uninstalled, in person id order.
    fn people(&mut self) -> Result<()> {
        let src = self.src;
        let files = self.infobip.as_mut().expect("only with infobip");
        // Installations grouped by owner (then id), to list each person's in one lookup.
        let mut by_owner: Vec<(i64, i64, usize)> = (0..src.devices.len())
            .map(|i| {
                let r = src.devices.row(i);
                (
                    r.int(d::PERSON).unwrap_or_default(),
                    r.int(d::ID).unwrap_or_default(),
                    i,
                )
            })
            .filter(|&(_, _, i)| src.devices.row(i).micros(d::UNINSTALLED).is_none())
            .collect();
        by_owner.sort_unstable();
        let mut persons: Vec<(i64, usize)> = (0..src.persons.len())
            .filter(|&p| src.identified(p))
            .map(|p| (src.person_id(p), p))
            .collect();
        persons.sort_unstable();
        let mut sink = files.create("people.jsonl.gz")?;
        let mut line = Vec::with_capacity(4096);
        let mut devices = Vec::new();
        for (id, p) in persons {
            let from = by_owner.partition_point(|x| x.0 < id);
            let to = by_owner.partition_point(|x| x.0 <= id);
            devices.clear();
            devices.extend(by_owner[from..to].iter().map(|x| x.2));
            line.clear();
            if infobip::person(&mut line, src, p, &devices) {
                sink.line(&line)?;
                self.people += 1;
            }
        }
        sink.close()
    }
}
