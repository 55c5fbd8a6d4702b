//! Gas data used for defaults and guardrails, kept as data rather than literals
//! scattered through the code, and open to the site file (`[[gases]]`) for a gas the
//! built-in table lacks or a figure a site must take from elsewhere.
//!
//! Occupational exposure limits per GBZ 2.1-2019 (Table 1, chemical agents): GB/T
//! 50493-2019 takes the MAC where one exists, else the PC-STEL, else the PC-TWA, and
//! ppm = mg/m³ × 24.45 / M at 25 °C and 101.3 kPa. LEL in % by volume. Each entry names
//! where its figures come from; `hazgate gases` prints the table in force, and
//! docs/gases.md explains it. Verify an entry against the standard and the detector's
//! calibration gas before relying on it for a real site.

use std::{borrow::Cow, fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// Which of GBZ 2.1's limits an OEL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OelBasis {
    /// 最高容许浓度, maximum allowable concentration.
    Mac,
    /// 短时间接触容许浓度, short-term (15 min) exposure limit.
    PcStel,
    /// 时间加权平均容许浓度, 8 h time-weighted average.
    PcTwa,
}

impl OelBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mac => "MAC",
            Self::PcStel => "PC-STEL",
            Self::PcTwa => "PC-TWA",
        }
    }
}

/// One row of the gas table.
#[derive(Debug, Clone, PartialEq)]
pub struct Gas {
    /// Name as written in site files (lowercase; a formula where one is unambiguous).
    pub name: Cow<'static, str>,
    pub formula: Cow<'static, str>,
    /// Molar mass, g/mol.
    pub molar_mass: f64,
    /// Lower explosive limit, % by volume; `None` if not combustible.
    pub lel_vol_pct: Option<f64>,
    /// The limit as the standard gives it, mg/m³, and which limit it is.
    pub oel: Option<(f64, OelBasis)>,
    /// Occupational exposure limit in ppm (25 °C, 101.3 kPa); `None` if not toxic.
    pub oel_ppm: Option<f64>,
    /// Where the figures come from.
    pub source: Cow<'static, str>,
}

const GBZ_LEL_NIOSH: &str = "OEL: GBZ 2.1-2019 Table 1; LEL: NIOSH Pocket Guide";
const GBZ: &str = "OEL: GBZ 2.1-2019 Table 1";
const LEL_NIOSH: &str = "LEL: NIOSH Pocket Guide";

use OelBasis::{Mac, PcStel, PcTwa};

/// The built-in table. Names and formulas are matched case-insensitively.
pub const GASES: &[Gas] = &[
    // Combustible only.
    gas("methane", "CH4", 16.04, Some(5.0), None, None, LEL_NIOSH),
    gas("propane", "C3H8", 44.10, Some(2.1), None, None, LEL_NIOSH),
    gas("propylene", "C3H6", 42.08, Some(2.0), None, None, LEL_NIOSH),
    gas("lpg", "C4H10", 58.12, Some(1.8), None, None, LEL_NIOSH),
    gas("butane", "C4H10", 58.12, Some(1.8), None, None, LEL_NIOSH),
    gas("hydrogen", "H2", 2.016, Some(4.0), None, None, LEL_NIOSH),
    gas("ethylene", "C2H4", 28.05, Some(2.7), None, None, LEL_NIOSH),
    gas("ethanol", "C2H5OH", 46.07, Some(3.3), None, None, LEL_NIOSH),
    // Toxic, many also combustible.
    gas(
        "methanol",
        "CH3OH",
        32.04,
        Some(6.0),
        Some((50.0, PcStel)),
        Some(38.0),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "benzene",
        "C6H6",
        78.11,
        Some(1.2),
        Some((10.0, PcStel)),
        Some(3.1),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "nh3",
        "NH3",
        17.03,
        Some(15.0),
        Some((30.0, PcStel)),
        Some(43.0),
        GBZ_LEL_NIOSH,
    ),
    gas("cl2", "Cl2", 70.90, None, Some((1.0, Mac)), Some(0.34), GBZ),
    gas(
        "h2s",
        "H2S",
        34.08,
        Some(4.0),
        Some((10.0, Mac)),
        Some(7.2),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "co",
        "CO",
        28.01,
        Some(12.5),
        Some((30.0, PcStel)),
        Some(26.0),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "so2",
        "SO2",
        64.07,
        None,
        Some((10.0, PcStel)),
        Some(3.8),
        GBZ,
    ),
    gas(
        "hcn",
        "HCN",
        27.03,
        Some(5.6),
        Some((1.0, Mac)),
        Some(0.9),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "cocl2",
        "COCl2",
        98.92,
        None,
        Some((0.5, Mac)),
        Some(0.12),
        GBZ,
    ),
    gas(
        "vinyl_chloride",
        "C2H3Cl",
        62.50,
        Some(3.6),
        Some((10.0, PcTwa)),
        Some(3.9),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "ethylene_oxide",
        "C2H4O",
        44.05,
        Some(3.0),
        Some((2.0, PcTwa)),
        Some(1.1),
        GBZ_LEL_NIOSH,
    ),
    gas("hcl", "HCl", 36.46, None, Some((7.5, Mac)), Some(5.0), GBZ),
    gas("hf", "HF", 20.01, None, Some((2.0, Mac)), Some(2.4), GBZ),
    gas(
        "acrylonitrile",
        "C3H3N",
        53.06,
        Some(3.0),
        Some((2.0, PcStel)),
        Some(0.92),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "cs2",
        "CS2",
        76.14,
        Some(1.3),
        Some((10.0, PcStel)),
        Some(3.2),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "no2",
        "NO2",
        46.01,
        None,
        Some((10.0, PcStel)),
        Some(5.3),
        GBZ,
    ),
    gas(
        "toluene",
        "C7H8",
        92.14,
        Some(1.1),
        Some((100.0, PcStel)),
        Some(26.5),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "xylene",
        "C8H10",
        106.17,
        Some(1.0),
        Some((100.0, PcStel)),
        Some(23.0),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "styrene",
        "C8H8",
        104.15,
        Some(0.9),
        Some((100.0, PcStel)),
        Some(23.5),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "acetone",
        "C3H6O",
        58.08,
        Some(2.5),
        Some((450.0, PcStel)),
        Some(190.0),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "ethyl_acetate",
        "C4H8O2",
        88.11,
        Some(2.0),
        Some((300.0, PcStel)),
        Some(83.0),
        GBZ_LEL_NIOSH,
    ),
    gas(
        "formaldehyde",
        "CH2O",
        30.03,
        Some(7.0),
        Some((0.5, Mac)),
        Some(0.41),
        GBZ_LEL_NIOSH,
    ),
];

#[allow(clippy::too_many_arguments)]
const fn gas(
    name: &'static str,
    formula: &'static str,
    molar_mass: f64,
    lel_vol_pct: Option<f64>,
    oel: Option<(f64, OelBasis)>,
    oel_ppm: Option<f64>,
    source: &'static str,
) -> Gas {
    Gas {
        name: Cow::Borrowed(name),
        formula: Cow::Borrowed(formula),
        molar_mass,
        lel_vol_pct,
        oel,
        oel_ppm,
        source: Cow::Borrowed(source),
    }
}

/// Finds a built-in gas by name or formula (case-insensitive). `"ammonia"` is not an
/// alias: site files use the table's names so that a typo is caught.
pub fn lookup(name: &str) -> Option<&'static Gas> {
    GASES.iter().find(|g| g.matches(name))
}

impl Gas {
    pub fn matches(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.formula.eq_ignore_ascii_case(name)
    }
}

/// The gases in force for a site: the built-in table with the site's `[[gases]]` added
/// or put in place of a built-in entry of the same name.
#[derive(Debug, Clone)]
pub struct GasTable(Vec<Arc<Gas>>);

impl GasTable {
    pub fn new(custom: impl IntoIterator<Item = Gas>) -> Self {
        let mut all: Vec<Arc<Gas>> = GASES.iter().cloned().map(Arc::new).collect();
        for g in custom {
            match all
                .iter()
                .position(|b| b.name.eq_ignore_ascii_case(&g.name))
            {
                Some(i) => all[i] = Arc::new(g),
                None => all.push(Arc::new(g)),
            }
        }
        Self(all)
    }

    /// By name first (a site's entry may share a formula with a built-in), then formula.
    pub fn find(&self, name: &str) -> Option<&Arc<Gas>> {
        self.0
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .or_else(|| self.0.iter().find(|g| g.formula.eq_ignore_ascii_case(name)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Gas>> {
        self.0.iter()
    }

    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|g| g.name.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for GasTable {
    fn default() -> Self {
        Self::new([])
    }
}

impl fmt::Display for GasTable {
    /// The table as `hazgate gases` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:<8} {:>8} {:>6} {:>16} {:>9}  source",
            "name", "formula", "M g/mol", "LEL %", "OEL mg/m³", "OEL ppm"
        )?;
        for g in &self.0 {
            let lel = g.lel_vol_pct.map_or("—".to_string(), |l| l.to_string());
            let oel = g
                .oel
                .map_or("—".to_string(), |(mg, b)| format!("{mg} {}", b.as_str()));
            let ppm = g.oel_ppm.map_or("—".to_string(), |p| p.to_string());
            writeln!(
                f,
                "{:<16} {:<8} {:>8} {:>6} {:>16} {:>9}  {}",
                g.name, g.formula, g.molar_mass, lel, oel, ppm, g.source
            )?;
        }
        Ok(())
    }
}

/// A `[[gases]]` entry of the site file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GasFile {
    /// The name points use as `gas = "…"`; a built-in name replaces that entry.
    pub name: String,
    pub formula: String,
    /// g/mol, for mg/m³ → ppm.
    pub molar_mass: f64,
    /// Lower explosive limit, % by volume, if combustible.
    #[serde(default)]
    pub lel_vol_pct: Option<f64>,
    /// The occupational exposure limit as GBZ 2.1 gives it, mg/m³ …
    #[serde(default)]
    pub oel_mg_m3: Option<f64>,
    /// … and which limit that is (`mac`, `pc_stel`, `pc_twa`).
    #[serde(default)]
    pub oel_basis: Option<OelBasis>,
    /// Where the figures come from (standard and table, safety data sheet, …).
    pub source: String,
}

impl GasFile {
    /// Checks the entry (every problem at `path.field`) and builds the gas.
    pub fn compile(&self, path: &str, errors: &mut super::problems::Problems) -> Option<Gas> {
        let before = errors.len();
        if self.name.trim().is_empty() || self.name.chars().any(char::is_whitespace) {
            errors.push(
                format!("{path}.name"),
                "a name without spaces, e.g. `vinyl_chloride`",
            );
        }
        if !(self.molar_mass.is_finite() && self.molar_mass > 0.0) {
            errors.push(
                format!("{path}.molar_mass"),
                format!("must be above 0 g/mol, got {}", self.molar_mass),
            );
        }
        if let Some(l) = self.lel_vol_pct.filter(|l| !(*l > 0.0 && *l < 100.0)) {
            errors.push(
                format!("{path}.lel_vol_pct"),
                format!("a lower explosive limit is between 0 and 100 % by volume, got {l}"),
            );
        }
        let oel = match (self.oel_mg_m3, self.oel_basis) {
            (Some(mg), Some(b)) if mg.is_finite() && mg > 0.0 => Some((mg, b)),
            (Some(mg), Some(_)) => {
                errors.push(
                    format!("{path}.oel_mg_m3"),
                    format!("must be above 0, got {mg}"),
                );
                None
            }
            (Some(_), None) => {
                errors.push(
                    format!("{path}.oel_basis"),
                    "which GBZ 2.1 limit oel_mg_m3 is: `mac`, `pc_stel` or `pc_twa` (GB/T 50493-2019 takes the MAC, else the PC-STEL, else the PC-TWA)",
                );
                None
            }
            (None, Some(_)) => {
                errors.push(
                    format!("{path}.oel_mg_m3"),
                    "oel_basis needs the limit in mg/m³",
                );
                None
            }
            (None, None) => None,
        };
        if oel.is_none() && self.lel_vol_pct.is_none() && errors.len() == before {
            errors.push(
                path.to_string(),
                "a gas for detectors needs lel_vol_pct (combustible) or oel_mg_m3 + oel_basis (toxic), or both",
            );
        }
        if self.source.trim().is_empty() {
            errors.push(
                format!("{path}.source"),
                "say where the figures come from (e.g. `GBZ 2.1-2019 Table 1; LEL: supplier SDS`)",
            );
        }
        (errors.len() == before).then(|| Gas {
            name: Cow::Owned(self.name.to_ascii_lowercase()),
            formula: Cow::Owned(self.formula.clone()),
            molar_mass: self.molar_mass,
            lel_vol_pct: self.lel_vol_pct,
            oel,
            oel_ppm: oel.map(|(mg, _)| mg_m3_to_ppm(mg, self.molar_mass)),
            source: Cow::Owned(self.source.clone()),
        })
    }
}

/// Converts mg/m³ to ppm at 25 °C and 101.3 kPa.
pub fn mg_m3_to_ppm(mg_m3: f64, molar_mass: f64) -> f64 {
    mg_m3 * 24.45 / molar_mass
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tabled ppm is the tabled mg/m³ converted (rounded to 2 significant digits
    /// at most 3 % off), so the two columns cannot drift apart.
    #[test]
    fn table_ppm_matches_mg_conversion() {
        for g in GASES {
            match (g.oel, g.oel_ppm) {
                (Some((mg, _)), Some(table)) => {
                    let ppm = mg_m3_to_ppm(mg, g.molar_mass);
                    assert!(
                        (ppm - table).abs() / table < 0.03,
                        "{}: {ppm} vs {table}",
                        g.name
                    );
                }
                (None, None) => assert!(g.lel_vol_pct.is_some(), "{}", g.name),
                _ => panic!("{}: mg/m³ and ppm go together", g.name),
            }
        }
    }

    #[test]
    fn lookup_by_formula_and_case() {
        assert_eq!(lookup("H2S").unwrap().name, "h2s");
        assert_eq!(lookup("Propylene").unwrap().formula, "C3H6");
        assert!(lookup("ammonia-ish").is_none());
    }

    #[test]
    fn a_site_entry_adds_or_replaces_by_name() {
        let mut cl2 = lookup("cl2").unwrap().clone();
        cl2.oel_ppm = Some(0.5);
        let vcm = Gas {
            name: "r1234yf".into(),
            ..lookup("propane").unwrap().clone()
        };
        let t = GasTable::new([cl2, vcm]);
        assert_eq!(t.find("cl2").unwrap().oel_ppm, Some(0.5));
        assert_eq!(t.find("R1234YF").unwrap().name, "r1234yf");
        assert_eq!(t.iter().count(), GASES.len() + 1);
    }
}
