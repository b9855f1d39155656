//! Plans the population: persons, their installations and each installation's lifecycle
//! (install → personalize → depersonalize → uninstall), before any event is generated.
//!
//! Ids are dense: persons `0..n`, installations ordered by their current owner, so both tables
//! come out sorted by person_id.

use super::rng::{hash, Rng};
use super::vocab;

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// "Never" for optional lifecycle times.
pub const NEVER: i64 = i64::MAX;

/// Names the random stream of the world plan (other streams are keyed by ids).
const WORLD_STREAM: u64 = 0x776f_726c;
/// Share of persons that are identified (the rest are anonymous).
const IDENTIFIED_SHARE: f64 = 0.6;
/// Devices per identified person: 1, 2 or 3.
const DEVICES_PER_PERSON: [f64; 3] = [0.35, 0.40, 0.25];
const DEPERSONALIZE_RATE: f64 = 0.05;
const UNINSTALL_RATE_IDENTIFIED: f64 = 0.14;
const UNINSTALL_RATE_ANONYMOUS: f64 = 0.28;

#[derive(Debug, Clone)]
pub struct Person {
    pub identified: bool,
    pub country: u8,
    pub created_at: i64,
    pub modified_at: i64,
}

#[derive(Debug, Clone)]
pub struct Device {
    /// The person the device is linked to now (an anonymous one after a depersonalize).
    pub owner: u32,
    /// The person it was linked to before a depersonalize (== owner if none happened).
    pub owner_before: u32,
    pub installed_at: i64,
    pub personalized_at: i64,
    pub depersonalized_at: i64,
    pub uninstalled_at: i64,
    /// Mean app sessions per day.
    pub rate: f32,
    pub platform: u8,
    pub primary: bool,
}

impl Device {
    /// Who an event at `t` belongs to: personalizing moves earlier history to the identified
    /// person; after a depersonalize new events belong to the device's new anonymous person.
    pub fn owner_at(&self, t: i64) -> u32 {
        if t >= self.depersonalized_at {
            self.owner
        } else {
            self.owner_before
        }
    }

    /// Last moment the device can produce events (exclusive).
    pub fn alive_until(&self, as_of: i64) -> i64 {
        self.uninstalled_at.min(as_of)
    }

    pub fn state(&self) -> &'static str {
        if self.uninstalled_at != NEVER {
            "uninstalled"
        } else if self.depersonalized_at != NEVER {
            "depersonalized"
        } else if self.personalized_at != NEVER {
            "personalized"
        } else {
            "anonymous"
        }
    }
}

pub struct World {
    pub seed: u64,
    pub start: i64,
    pub as_of: i64,
    pub persons: Vec<Person>,
    pub devices: Vec<Device>,
}

impl World {
    pub fn plan(seed: u64, persons: usize, start: i64, as_of: i64) -> World {
        let mut rng = Rng::new(seed, &[WORLD_STREAM]);
        let span = as_of - start;
        let country_weights: Vec<f64> = vocab::COUNTRIES.iter().map(|c| c.weight).collect();
        let platform_weights: Vec<f64> = vocab::PLATFORMS.iter().map(|p| p.1).collect();

        let mut people: Vec<Person> = (0..persons)
            .map(|_| Person {
                identified: rng.chance(IDENTIFIED_SHARE),
                country: rng.weighted(&country_weights) as u8,
                created_at: NEVER,
                modified_at: NEVER,
            })
            .collect();
        // Anonymous persons, handed out in id order: first to depersonalized devices, then to
        // devices that never personalized.
        let anonymous_ids: Vec<u32> = (0..persons as u32)
            .filter(|&i| !people[i as usize].identified)
            .collect();
        let mut anonymous = anonymous_ids.into_iter();
        let mut devices = Vec::with_capacity(persons * 3 / 2);

        // Installs lean towards the start of the history: the app has an installed base.
        let install_time = |rng: &mut Rng| start + (span as f64 * rng.f64().powf(1.6)) as i64;
        for pid in 0..persons as u32 {
            let person = &people[pid as usize];
            if !person.identified {
                continue;
            }
            // Activity is heavy-tailed: most people open the app rarely, a few all the time.
            let activity = rng.lognormal(0.085, 1.5).min(40.0);
            let n = 1 + rng.weighted(&DEVICES_PER_PERSON);
            for _ in 0..n {
                let installed_at = install_time(&mut rng);
                let delay = (rng.exp(6.0 * 3600.0) * MICROS_PER_SEC as f64) as i64;
                let personalized_at =
                    (installed_at + MICROS_PER_SEC * 30 + delay).min(as_of - MICROS_PER_SEC);
                let personalized_at = personalized_at.max(installed_at + 1);
                let mut d = Device {
                    owner: pid,
                    owner_before: pid,
                    installed_at,
                    personalized_at,
                    depersonalized_at: NEVER,
                    uninstalled_at: NEVER,
                    rate: (activity * (0.3 + 0.7 * rng.f64())) as f32,
                    platform: rng.weighted(&platform_weights) as u8,
                    primary: false,
                };
                let mut last = personalized_at;
                if rng.chance(DEPERSONALIZE_RATE) {
                    let t = rng.range(last + 1, as_of);
                    if t < as_of {
                        if let Some(anon) = anonymous.next() {
                            d.depersonalized_at = t;
                            d.owner = anon;
                            let p = &mut people[anon as usize];
                            p.created_at = t;
                            p.modified_at = t;
                            last = t;
                        }
                    }
                }
                if rng.chance(UNINSTALL_RATE_IDENTIFIED) {
                    let t = rng.range(last + 1, as_of);
                    if t < as_of {
                        d.uninstalled_at = t;
                    }
                }
                devices.push(d);
            }
        }
        for anon in anonymous {
            let installed_at = install_time(&mut rng);
            let mut d = Device {
                owner: anon,
                owner_before: anon,
                installed_at,
                personalized_at: NEVER,
                depersonalized_at: NEVER,
                uninstalled_at: NEVER,
                rate: rng.lognormal(0.057, 1.5).min(20.0) as f32,
                platform: rng.weighted(&platform_weights) as u8,
                primary: false,
            };
            if rng.chance(UNINSTALL_RATE_ANONYMOUS) {
                let t = rng.range(installed_at + 1, as_of);
                if t < as_of {
                    d.uninstalled_at = t;
                }
            }
            let p = &mut people[anon as usize];
            p.created_at = installed_at;
            p.modified_at = installed_at;
            devices.push(d);
        }

        devices.sort_by_key(|d| (d.owner, d.installed_at));
        mark_primary_devices(&mut devices);
        stamp_identified_persons(seed, &mut people, &devices, as_of);
        World {
            seed,
            start,
            as_of,
            persons: people,
            devices,
        }
    }
}

/// Exactly one primary device among each person's active (not uninstalled) devices: the most
/// recently installed one. Devices are sorted by owner.
fn mark_primary_devices(devices: &mut [Device]) {
    let mut i = 0;
    while i < devices.len() {
        let owner = devices[i].owner;
        let mut j = i;
        let mut best: Option<usize> = None;
        while j < devices.len() && devices[j].owner == owner {
            if devices[j].uninstalled_at == NEVER {
                best = Some(j);
            }
            j += 1;
        }
        if let Some(b) = best {
            devices[b].primary = true;
        }
        i = j;
    }
}

/// An identified person exists from their first personalize; their profile changes afterwards.
fn stamp_identified_persons(seed: u64, people: &mut [Person], devices: &[Device], as_of: i64) {
    for d in devices {
        if d.personalized_at != NEVER {
            let p = &mut people[d.owner_before as usize];
            p.created_at = p.created_at.min(d.personalized_at);
        }
    }
    for (pid, p) in people.iter_mut().enumerate() {
        if p.created_at == NEVER {
            // An identified person whose devices all went elsewhere still has a profile.
            p.created_at = as_of - MICROS_PER_DAY * 400
                + (hash(seed, &[pid as u64, 1]) % (MICROS_PER_DAY as u64 * 30)) as i64;
        }
        if p.identified {
            let mut rng = Rng::new(seed, &[pid as u64, 0x6d6f64]);
            p.modified_at = rng.range(p.created_at, as_of).max(p.created_at);
        } else if p.modified_at == NEVER {
            p.modified_at = p.created_at;
        }
    }
}
