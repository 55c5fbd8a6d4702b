//! Every configuration problem in one shape — a field path an engineer can find in the
//! file (`hazard_sources[1].points[4].address`) and what is wrong there — gathered by
//! one collector, so a check reports them all, not just the first.

use std::fmt;

/// One problem in a configuration, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The problems found so far.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Pushes unless the same problem is already there (one setting inherited by many
    /// points is one problem).
    pub fn push_once(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let e = FieldError {
            path: path.into(),
            message: message.into(),
        };
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }

    /// A view that prefixes every path with `section.` (e.g. `uplink.`).
    pub fn at<'p>(&'p mut self, section: &'p str) -> At<'p> {
        At {
            problems: self,
            section,
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// A characters check for ids that go into MQTT topics and store tags.
    pub fn identifier(&mut self, path: &str, value: &str) {
        if value.is_empty() {
            self.push(path, "must not be empty");
        } else if let Some(c) = value
            .chars()
            .find(|c| matches!(c, '/' | '+' | '#' | ',' | '=' | '"') || c.is_whitespace())
        {
            self.push(
                path,
                format!("`{value}` contains `{c}`; ids go into MQTT topics and store tags"),
            );
        }
    }
}

/// [`Problems`] under one section of the file.
pub struct At<'p> {
    problems: &'p mut Problems,
    section: &'p str,
}

impl At<'_> {
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        let path = if field.is_empty() {
            self.section.to_string()
        } else {
            format!("{}.{field}", self.section)
        };
        self.problems.push(path, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_prefixes_its_fields() {
        let mut p = Problems::default();
        p.at("uplink").push("port", "must not be 0");
        p.at("risk.rules[2]").push("", "a rule needs a class");
        p.identifier("gateway.gateway_id", "GW 1");
        let paths: Vec<String> = p.into_vec().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            ["uplink.port", "risk.rules[2]", "gateway.gateway_id"]
        );
    }
}
