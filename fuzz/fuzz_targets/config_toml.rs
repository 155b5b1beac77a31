//! Fuzz target for the configuration loader: TOML text through `config::parse`, which
//! deserializes and then runs every semantic check (`Config::validate`), as `netwarden
//! check-config` and start-up do for the main file.
//!
//! Beyond "does not panic": an accepted config has no validation problem left, serializes
//! back to TOML that loads to the same config, and loads the same way twice; a refused one
//! reports at least one problem, each naming the file, with a message, and with a line and
//! column inside the text when it gives one.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netwarden::config::{ConfigErrors, parse};

const PATH: &str = "fuzz.toml";

fn check_errors(text: &str, errors: &ConfigErrors) {
    assert!(!errors.0.is_empty(), "a refusal names at least one problem");
    let lines = text.lines().count().max(1);
    for e in &errors.0 {
        assert_eq!(e.path, Path::new(PATH), "{e}");
        assert!(!e.message.trim().is_empty(), "{e}");
        if let Some(line) = e.line {
            // A problem at the very end may point one line past the last newline.
            assert!((1..=lines + 1).contains(&line), "{e} (text has {lines} lines)");
            assert!(e.column.is_none_or(|c| c >= 1), "{e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = parse(text, Path::new(PATH));
    match &first {
        Ok(config) => {
            let problems = config.validate();
            assert!(problems.is_empty(), "accepted yet invalid: {problems:?}");
            let written = toml::to_string(config).expect("an accepted config serializes");
            let again = parse(&written, Path::new(PATH))
                .unwrap_or_else(|e| panic!("written back, it is refused:\n{written}\n{e}"));
            assert_eq!(&again, config, "round trip through:\n{written}");
        }
        Err(errors) => check_errors(text, errors),
    }
    let second = parse(text, Path::new(PATH));
    assert_eq!(
        first.map_err(|e| e.to_string()),
        second.map_err(|e| e.to_string()),
        "loading is deterministic"
    );
});
