//! The JSON files the ceremony commands read (a path, or `-` for standard input) and the JSON
//! they print.

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `what` (for messages) as JSON from `path`, or from standard input when it is `-`.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, String> {
    let mut text = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_end(&mut text).map(|_| ()))
    };
    read.map_err(|error| format!("cannot read the {what} from {}: {error}", path.display()))?;
    serde_json::from_slice(&text)
        .map_err(|error| format!("{} is not a {what}: {error}", path.display()))
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|error| error.to_string())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").map_err(|error| format!("cannot write the answer: {error}"))
}
