//! Any UTF-8 input: parsing, checking and rendering diagnostics must never panic, and whatever
//! parses must print to a canonical form that parses to the same text.
#![no_main]

use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    match audience::syntax::parse(src) {
        Ok(seg) => {
            let printed = seg.to_string();
            let again = audience::syntax::parse(&printed).expect("canonical form parses");
            assert_eq!(again.to_string(), printed);
            let _ = compile(src, &Catalog::sample(), &NoSavedSegments);
        }
        Err(d) => {
            let _ = d.render(src, "fuzz", false);
        }
    }
});
