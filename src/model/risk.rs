//! `[risk]` in the site file: the four colours (红橙黄蓝) and the rule table that maps a
//! hazard source's alarm picture to one, with the project's defaults (docs/judge.md,
//! "Four-colour risk"). The judge applies it (`judge::risk`).

use serde::{Deserialize, Serialize};

use super::{alarm::AlarmClass, problems::At};

/// Risk colours, ordered from low to major risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// 蓝 low risk (低风险).
    Blue,
    /// 黄 general risk (一般风险).
    Yellow,
    /// 橙 considerable risk (较大风险).
    Orange,
    /// 红 major risk (重大风险).
    Red,
}

impl Colour {
    pub fn up(self) -> Self {
        match self {
            Self::Blue => Self::Yellow,
            Self::Yellow => Self::Orange,
            _ => Self::Red,
        }
    }

    /// 0 (blue) to 3 (red), as stored in the time-series store.
    pub fn level(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blue => "blue",
            Self::Yellow => "yellow",
            Self::Orange => "orange",
            Self::Red => "red",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            Self::Blue => "蓝",
            Self::Yellow => "黄",
            Self::Orange => "橙",
            Self::Red => "红",
        }
    }
}

/// One row of the rule table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRule {
    pub colour: Colour,
    /// Alarms of at least this class count toward the rule; absent = no alarm needed.
    #[serde(default)]
    pub class: Option<AlarmClass>,
    /// Hazard-source levels (GB 18218) the rule applies to; empty = all.
    #[serde(default)]
    pub levels: Vec<u8>,
    /// Distinct points that must have such an alarm.
    #[serde(default = "one")]
    pub min_points: u32,
    /// The rule needs a special operation (特殊作业) in progress on the source.
    #[serde(default)]
    pub special_operation: bool,
    /// Shown as the reason.
    pub description: String,
}

fn one() -> u32 {
    1
}

/// `[risk]` in the site file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Seconds the conditions of a colour must stay absent before the source goes down.
    #[serde(default = "default_hold")]
    pub hold_s: f64,
    /// An alarm active and unacknowledged longer than this raises the source one colour.
    #[serde(default = "default_persistence")]
    pub persistence_s: f64,
    /// This many gas detectors of one source in fault at once make it blind: a high alarm.
    #[serde(default = "default_blind")]
    pub blind_detectors: u32,
    #[serde(default = "default_rules")]
    pub rules: Vec<RiskRule>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            hold_s: default_hold(),
            persistence_s: default_persistence(),
            blind_detectors: default_blind(),
            rules: default_rules(),
        }
    }
}

fn default_hold() -> f64 {
    600.0
}
fn default_persistence() -> f64 {
    1800.0
}
fn default_blind() -> u32 {
    3
}

/// The default table of `risk-rules.md`, top to bottom.
pub fn default_rules() -> Vec<RiskRule> {
    let rule =
        |colour, class, levels: &[u8], min_points, special_operation, description: &str| RiskRule {
            colour,
            class,
            levels: levels.to_vec(),
            min_points,
            special_operation,
            description: description.to_string(),
        };
    use AlarmClass::*;
    use Colour::*;
    vec![
        rule(
            Red,
            Some(Critical),
            &[1, 2],
            1,
            false,
            "critical alarm on a level 1/2 source",
        ),
        rule(
            Red,
            Some(High),
            &[],
            2,
            false,
            "high or critical alarms at 2+ points (spreading)",
        ),
        rule(
            Red,
            Some(Critical),
            &[],
            1,
            true,
            "critical alarm during a special operation",
        ),
        rule(
            Orange,
            Some(Critical),
            &[3, 4],
            1,
            false,
            "critical alarm on a level 3/4 source",
        ),
        rule(
            Orange,
            Some(High),
            &[1, 2],
            1,
            false,
            "high alarm on a level 1/2 source",
        ),
        rule(
            Yellow,
            Some(High),
            &[3, 4],
            1,
            false,
            "high alarm on a level 3/4 source",
        ),
        rule(Yellow, Some(Low), &[], 1, false, "low alarm"),
        rule(
            Yellow,
            None,
            &[],
            1,
            true,
            "special operation in progress (floor)",
        ),
    ]
}

/// `[risk]` compiled: the rule table with its durations typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    /// How long a colour's conditions must stay absent before the source goes down.
    pub hold: std::time::Duration,
    /// How long an alarm may stand unacknowledged before its source goes up a colour.
    pub persistence: std::time::Duration,
    pub blind_detectors: u32,
    pub rules: Vec<RiskRule>,
}

impl RiskConfig {
    /// The section compiled (checked by [`RiskConfig::validate`] first).
    pub fn compile(&self) -> Risk {
        let secs = |s: f64| std::time::Duration::try_from_secs_f64(s).unwrap_or_default();
        Risk {
            hold: secs(self.hold_s),
            persistence: secs(self.persistence_s),
            blind_detectors: self.blind_detectors,
            rules: self.rules.clone(),
        }
    }

    /// Checks the table; paths are relative to `[risk]`.
    pub fn validate(&self, p: &mut At<'_>) {
        if !(self.hold_s.is_finite() && self.hold_s >= 0.0) {
            p.push("hold_s", "must be ≥ 0 seconds");
        }
        if !(self.persistence_s.is_finite() && self.persistence_s > 0.0) {
            p.push("persistence_s", "must be above 0 seconds");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(l) = r.levels.iter().find(|l| !(1..=4).contains(*l)) {
                p.push(
                    &format!("rules[{i}].levels"),
                    format!("levels are 1..=4, got {l}"),
                );
            }
            if r.min_points == 0 {
                p.push(&format!("rules[{i}].min_points"), "must be at least 1");
            }
            if r.class.is_none() && !r.special_operation {
                p.push(
                    &format!("rules[{i}]"),
                    "a rule needs a class or special_operation = true",
                );
            }
        }
    }
}
