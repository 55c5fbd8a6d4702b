//! Gas data used for defaults and guardrails, kept as data rather than literals
//! scattered through the code.
//!
//! Values per GBZ 2.1-2019 (occupational exposure limits; the OEL used is the MAC where
//! one exists, else the PC-STEL, else the PC-TWA, as GB/T 50493-2019 asks) and LEL in %
//! by volume; documented in docs/judge.md. Verify against the standard before relying
//! on an entry for a real site.

/// One row of the gas table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gas {
    /// Name as written in site files (lowercase, formula-like).
    pub name: &'static str,
    pub formula: &'static str,
    /// Molar mass, g/mol.
    pub molar_mass: f64,
    /// Lower explosive limit, % by volume; `None` if not combustible.
    pub lel_vol_pct: Option<f64>,
    /// Occupational exposure limit in ppm (25 °C, 101.3 kPa); `None` if not toxic.
    pub oel_ppm: Option<f64>,
}

/// The built-in table. Names are matched case-insensitively.
pub const GASES: &[Gas] = &[
    gas("methane", "CH4", 16.04, Some(5.0), None),
    gas("propane", "C3H8", 44.10, Some(2.1), None),
    gas("propylene", "C3H6", 42.08, Some(2.0), None),
    gas("lpg", "C4H10", 58.12, Some(1.8), None),
    gas("butane", "C4H10", 58.12, Some(1.8), None),
    gas("hydrogen", "H2", 2.016, Some(4.0), None),
    gas("ethylene", "C2H4", 28.05, Some(2.7), None),
    gas("methanol", "CH3OH", 32.04, Some(6.0), Some(38.0)),
    gas("benzene", "C6H6", 78.11, Some(1.2), Some(3.1)),
    gas("nh3", "NH3", 17.03, Some(15.0), Some(43.0)),
    gas("cl2", "Cl2", 70.90, None, Some(0.34)),
    gas("h2s", "H2S", 34.08, Some(4.0), Some(7.2)),
    gas("co", "CO", 28.01, Some(12.5), Some(26.0)),
    gas("so2", "SO2", 64.07, None, Some(3.8)),
    gas("hcn", "HCN", 27.03, Some(5.6), Some(0.9)),
    gas("cocl2", "COCl2", 98.92, None, Some(0.12)),
];

const fn gas(
    name: &'static str,
    formula: &'static str,
    molar_mass: f64,
    lel_vol_pct: Option<f64>,
    oel_ppm: Option<f64>,
) -> Gas {
    Gas {
        name,
        formula,
        molar_mass,
        lel_vol_pct,
        oel_ppm,
    }
}

/// Finds a gas by name or formula (case-insensitive), e.g. `"NH3"`, `"ammonia"` is not
/// an alias: site files use the table's names so that a typo is caught.
pub fn lookup(name: &str) -> Option<&'static Gas> {
    GASES
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(name) || g.formula.eq_ignore_ascii_case(name))
}

/// Converts mg/m³ to ppm at 25 °C and 101.3 kPa.
pub fn mg_m3_to_ppm(mg_m3: f64, molar_mass: f64) -> f64 {
    mg_m3 * 24.45 / molar_mass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ppm_matches_mg_conversion() {
        // Chlorine MAC 1 mg/m³ → 0.34 ppm; H2S MAC 10 mg/m³ → 7.2 ppm; NH3 STEL 30 → 43.
        for (name, mg) in [("cl2", 1.0), ("h2s", 10.0), ("nh3", 30.0), ("co", 30.0)] {
            let g = lookup(name).unwrap();
            let ppm = mg_m3_to_ppm(mg, g.molar_mass);
            let table = g.oel_ppm.unwrap();
            assert!(
                (ppm - table).abs() / table < 0.02,
                "{name}: {ppm} vs {table}"
            );
        }
    }

    #[test]
    fn lookup_by_formula_and_case() {
        assert_eq!(lookup("H2S").unwrap().name, "h2s");
        assert_eq!(lookup("Propylene").unwrap().formula, "C3H6");
        assert!(lookup("ammonia-ish").is_none());
    }
}
