//! Names: attributes (standard, custom, derived), event properties inside `where`, and events,
//! resolved through the catalog's one matching rule; a name that resolves to nothing gets a
//! precise reason and a "did you mean".

use super::typed::Field;
use super::{Checker, Ctx};
use crate::catalog::names::{same, suggest};
use crate::catalog::{AttributeDef, Catalog, Entity, EventDef};
use crate::diagnostic::Code;
use crate::syntax::ast::{self, Name};

/// Fields computed from attributes, usable wherever an attribute is.
const DERIVED: [&str; 3] = ["age", "randomBucket", "birthday"];

impl<'a> Checker<'a> {
    /// Standard or custom attribute named by `n` (no errors reported).
    pub(super) fn resolve_attribute(&self, n: &Name) -> Option<Field> {
        let parts: Vec<&str> = n.parts.iter().map(|p| p.text.as_str()).collect();
        let find = |entity: Entity, name: &str, custom: bool| -> Option<&AttributeDef> {
            self.catalog.attribute(entity, name, custom)
        };
        let field = |entity: Entity, a: &AttributeDef| Field::Attribute {
            entity,
            name: a.name.clone(),
            column: a.column.clone(),
            ty: a.ty,
        };
        let ns = |s: &str, word: &str| s.eq_ignore_ascii_case(word);
        match parts.as_slice() {
            [p, x] if ns(p, "person") => {
                find(Entity::Person, x, false).map(|a| field(Entity::Person, a))
            }
            [p, c, x] if ns(p, "person") && ns(c, "custom") => {
                find(Entity::Person, x, true).map(|a| field(Entity::Person, a))
            }
            [p, x] if ns(p, "installation") => {
                find(Entity::Installation, x, false).map(|a| field(Entity::Installation, a))
            }
            [p, c, x] if ns(p, "installation") && ns(c, "custom") => {
                find(Entity::Installation, x, true).map(|a| field(Entity::Installation, a))
            }
            [c, x] if ns(c, "custom") => {
                match (
                    find(Entity::Person, x, true),
                    find(Entity::Installation, x, true),
                ) {
                    (Some(a), None) => Some(field(Entity::Person, a)),
                    (None, Some(a)) => Some(field(Entity::Installation, a)),
                    _ => None,
                }
            }
            [x] if same(x, "age") => Some(Field::Age),
            [x] if same(x, "birthday") && find(Entity::Person, x, false).is_none() => {
                find(Entity::Person, "birthDate", false)
                    .map(|a| Field::Anniversary(Box::new(field(Entity::Person, a))))
            }
            [x] if same(x, "randomBucket") => Some(Field::RandomBucket),
            [x] => match (
                find(Entity::Installation, x, false),
                find(Entity::Person, x, false),
            ) {
                (Some(a), None) => Some(field(Entity::Installation, a)),
                (None, Some(a)) => Some(field(Entity::Person, a)),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn name(&mut self, n: &Name, ctx: Ctx) -> Option<Field> {
        if let Some(event) = ctx {
            return self.property(n, event);
        }
        if let Some(f) = self.resolve_attribute(n) {
            return Some(f);
        }
        // Explain why not, precisely.
        let parts: Vec<&str> = n.parts.iter().map(|p| p.text.as_str()).collect();
        let cat = self.catalog;
        let std_names = |e: Entity| {
            cat.attributes(e)
                .iter()
                .filter(|a| !a.custom)
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
        };
        let custom_names = |e: Entity| {
            cat.attributes(e)
                .iter()
                .filter(|a| a.custom)
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
        };
        let ns = |s: &str, word: &str| s.eq_ignore_ascii_case(word);
        let (message, candidates, prefix): (String, Vec<&str>, String) = match parts.as_slice() {
            [p, x] if ns(p, "person") => (
                format!("persons have no attribute `{x}`"),
                std_names(Entity::Person),
                "person.".into(),
            ),
            [p, c, x] if ns(p, "person") && ns(c, "custom") => (
                format!("persons have no custom attribute `{x}`"),
                custom_names(Entity::Person),
                "person.custom.".into(),
            ),
            [p, x] if ns(p, "installation") => (
                format!("installations have no attribute `{x}`"),
                std_names(Entity::Installation),
                "installation.".into(),
            ),
            [p, c, x] if ns(p, "installation") && ns(c, "custom") => (
                format!("installations have no custom attribute `{x}`"),
                custom_names(Entity::Installation),
                "installation.custom.".into(),
            ),
            [c, x] if ns(c, "custom") => {
                let on_person = cat.attribute(Entity::Person, x, true).is_some()
                    || custom_names(Entity::Person).iter().any(|a| same(a, x));
                let on_inst = custom_names(Entity::Installation)
                    .iter()
                    .any(|a| same(a, x));
                if on_person && on_inst {
                    self.error_hint(
                        Code::AmbiguousAttribute,
                        n.span,
                        format!(
                            "`custom.{x}` is a custom attribute of both persons and installations"
                        ),
                        format!("write person.custom.{x} or installation.custom.{x}"),
                    );
                    return None;
                }
                let mut all = custom_names(Entity::Person);
                all.extend(custom_names(Entity::Installation));
                (
                    format!("there is no custom attribute `{x}`"),
                    all,
                    "custom.".into(),
                )
            }
            [x] => {
                let on_inst = std_names(Entity::Installation).iter().any(|a| same(a, x));
                let on_person = std_names(Entity::Person).iter().any(|a| same(a, x));
                if on_inst && on_person {
                    self.error_hint(
                        Code::AmbiguousAttribute,
                        n.span,
                        format!("`{x}` is an attribute of both persons and installations"),
                        format!("write person.{x} or installation.{x}"),
                    );
                    return None;
                }
                if let Some(a) = cat
                    .person
                    .iter()
                    .chain(&cat.installation)
                    .find(|a| a.custom && same(&a.name, x))
                {
                    let entity = if cat.person.iter().any(|p| std::ptr::eq(p, a)) {
                        "person"
                    } else {
                        "installation"
                    };
                    self.error_hint(
                        Code::CustomWithoutNamespace,
                        n.span,
                        format!("`{x}` is a custom attribute"),
                        format!("write {entity}.custom.{} (or custom.{})", a.name, a.name),
                    );
                    return None;
                }
                let mut all = std_names(Entity::Installation);
                all.extend(std_names(Entity::Person));
                all.extend(DERIVED);
                (format!("unknown attribute `{x}`"), all, String::new())
            }
            [e, p] if cat.events.iter().any(|d| same(&d.name, e)) => {
                self.error_hint(Code::PropertyOutsideFunction, n.span, format!("`{e}.{p}` is an event property: it can only be used inside an event function"), format!("e.g. sum({e}.{p}) > 100, or count({e} where {p} = …) >= 1"));
                return None;
            }
            _ => (format!("unknown name `{n}`"), vec![], String::new()),
        };
        let last = parts.last().copied().unwrap_or_default();
        match suggest(last, candidates.iter().copied()) {
            Some(s) => self.error_hint(
                Code::UnknownAttribute,
                n.span,
                message,
                format!("did you mean `{prefix}{s}`?"),
            ),
            None => self.error_hint(
                Code::UnknownAttribute,
                n.span,
                message,
                "`audience info` lists every attribute",
            ),
        }
        None
    }

    pub(super) fn property(&mut self, n: &Name, event: &EventDef) -> Option<Field> {
        let parts: Vec<&str> = n.parts.iter().map(|p| p.text.as_str()).collect();
        let prop = match parts.as_slice() {
            [p] => *p,
            [e, p] if same(e, &event.name) => *p,
            _ => {
                self.error(
                    Code::NotAProperty,
                    n.span,
                    format!("inside `where`, names are properties of {}", event.name),
                );
                return None;
            }
        };
        match event.properties.iter().find(|p| same(&p.name, prop)) {
            Some(p) => Some(Field::Property {
                event: event.name.clone(),
                name: p.name.clone(),
                column: p.column.clone(),
                ty: p.ty,
            }),
            None => {
                let names: Vec<&str> = event.properties.iter().map(|p| p.name.as_str()).collect();
                let msg = format!("{} has no property `{prop}`", event.name);
                match suggest(prop, names.iter().copied()) {
                    Some(s) => self.error_hint(
                        Code::UnknownProperty,
                        n.span,
                        msg,
                        format!("did you mean `{s}`?"),
                    ),
                    None if names.is_empty() => self.error_hint(
                        Code::UnknownProperty,
                        n.span,
                        msg,
                        format!("{} has no properties", event.name),
                    ),
                    None => self.error_hint(
                        Code::UnknownProperty,
                        n.span,
                        msg,
                        format!("its properties: {}", names.join(", ")),
                    ),
                }
                None
            }
        }
    }

    pub(super) fn event(&mut self, id: &ast::Ident) -> Option<&'a EventDef> {
        let catalog: &'a Catalog = self.catalog;
        if let Some(e) = catalog.events.iter().find(|e| same(&e.name, &id.text)) {
            return Some(e);
        }
        let msg = format!("unknown event `{}`", id.text);
        match suggest(&id.text, catalog.events.iter().map(|e| e.name.as_str())) {
            Some(s) => self.error_hint(
                Code::UnknownEvent,
                id.span,
                msg,
                format!("did you mean `{s}`?"),
            ),
            None => self.error_hint(
                Code::UnknownEvent,
                id.span,
                msg,
                format!(
                    "events: {}",
                    catalog
                        .events
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testing::checked;
    use insta::assert_snapshot;

    #[test]
    fn names_resolve_forgivingly_and_canonically() {
        assert_snapshot!(checked("PRIMARYDEVICE and push_registration_enabled and `App Launch`"), @"installation.primaryDevice and installation.pushRegistrationEnabled and count(AppLaunch) > 0");
        assert_snapshot!(checked("appVersion >= \"5.2\" and custom.theme = \"dark\" and age > 30"), @r#"installation.applicationVersion >= "5.2" and installation.custom.theme = "dark" and age > 30"#);
    }

    #[test]
    fn unknown_names_get_a_reason_and_a_suggestion() {
        assert_snapshot!(checked("primaryDevise"), @"E020 0..13 unknown attribute `primaryDevise` (did you mean `primaryDevice`?)");
        assert_snapshot!(checked("person.platfrom = \"iOS\""), @"E020 0..15 persons have no attribute `platfrom` (`audience info` lists every attribute)");
        assert_snapshot!(checked("count(AppLunch) > 1"), @"E023 6..14 unknown event `AppLunch` (did you mean `AppLaunch`?)");
        assert_snapshot!(checked("count(Purchase where amout > 1) > 1"), @"E024 21..26 Purchase has no property `amout` (did you mean `amount`?)");
    }

    #[test]
    fn names_that_need_a_namespace_say_which() {
        assert_snapshot!(checked("createdAt within 7d"), @"person.createdAt within 7d");
        assert_snapshot!(checked("favoriteTeam = \"Dinamo\""), @"E022 0..12 `favoriteTeam` is a custom attribute (write person.custom.favoriteTeam (or custom.favoriteTeam))");
        assert_snapshot!(checked("Purchase.amount > 10"), @"E025 0..15 `Purchase.amount` is an event property: it can only be used inside an event function (e.g. sum(Purchase.amount) > 100, or count(Purchase where amount = …) >= 1)");
        assert_snapshot!(checked("count(Purchase where person.country = \"HR\") > 0"), @"E026 21..35 inside `where`, names are properties of Purchase");
    }
}
