//! Guardians on the command line: `NAME=URL`, each token read from `GUARDIAN_TOKEN_<NAME>`.

use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use vottery_common::guardians::mediator::Connector;

/// One `--guardian NAME=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianArg {
    pub name: String,
    pub url: String,
}

impl FromStr for GuardianArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, url) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not NAME=URL"))?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() {
            return Err(format!("{text:?} has no guardian name"));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        }
        Ok(GuardianArg {
            name: name.to_owned(),
            url: url.to_owned(),
        })
    }
}

/// The environment variable holding guardian `name`'s token.
pub fn token_variable(name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("GUARDIAN_TOKEN_{suffix}")
}

/// A connector holding the tokens of `names`, each read from its variable.
pub fn connector<'a>(
    names: impl IntoIterator<Item = &'a str>,
    timeout: Duration,
) -> Result<Connector, String> {
    let mut connector = Connector::new(timeout);
    for name in names {
        let variable = token_variable(name);
        let token = std::env::var(&variable)
            .ok()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| format!("guardian {name}: set {variable} to its token"))?;
        connector = connector.with_token(name, SecretString::from(token));
    }
    Ok(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guardian_is_a_name_and_an_http_url() {
        let parsed: GuardianArg = "guardian-1=http://127.0.0.1:8201".parse().unwrap();
        assert_eq!(parsed.name, "guardian-1");
        assert_eq!(parsed.url, "http://127.0.0.1:8201");
        assert!("guardian-1".parse::<GuardianArg>().is_err());
        assert!("=http://x".parse::<GuardianArg>().is_err());
        assert!("a=ftp://x".parse::<GuardianArg>().is_err());
    }

    #[test]
    fn token_variables_are_upper_case_with_underscores() {
        assert_eq!(token_variable("guardian-1"), "GUARDIAN_TOKEN_GUARDIAN_1");
        assert_eq!(token_variable("Alice.b"), "GUARDIAN_TOKEN_ALICE_B");
    }
}
