//! The site file as written by an engineer: a direct serde mirror of the TOML.
//!
//! Every struct denies unknown keys, so a typo (`adress = 4`) is an error that
//! names the field instead of a silently ignored line. Nothing here is checked
//! beyond its type; [`super::validate`] does the cross-field checks against these
//! structs, so that its error paths (`hazard_sources[1].points[4].address`) match
//! the positions in the file the engineer is looking at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{alarm::AlarmSettingsFile, problems::At, risk::RiskConfig};

/// The whole gateway configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFile {
    pub gateway: GatewayFile,
    #[serde(default)]
    pub channels: Vec<ChannelFile>,
    #[serde(default)]
    pub hazard_sources: Vec<HazardSourceFile>,
    #[serde(default)]
    pub acquisition: AcquisitionFile,
    /// Site-wide alarm defaults per point kind, e.g. `[alarm_defaults.combustible_gas]`.
    #[serde(default, deserialize_with = "super::plain::choice_keys")]
    pub alarm_defaults: BTreeMap<PointKind, AlarmSettingsFile>,
    /// The four-colour rule table; the documented defaults when absent.
    #[serde(default)]
    pub risk: RiskConfig,
    /// MQTT uplink to the park's centre; none = no forwarding.
    #[serde(default)]
    pub uplink: Option<super::uplink::UplinkConfig>,
    /// The local HTTP API: where it listens, its tokens, TLS.
    #[serde(default)]
    pub api: ApiConfig,
    /// The gateway's own history of readings and events; none = not kept.
    #[serde(default)]
    pub history: Option<super::history::HistoryConfig>,
    /// Gases added to the built-in table, or replacing an entry of the same name.
    #[serde(default)]
    pub gases: Vec<super::gas::GasFile>,
    /// A CSV point table for the whole site, each row naming its `hazard_source`
    /// (relative to this file's directory).
    #[serde(default)]
    pub points_csv: Option<String>,
    #[serde(default)]
    pub points_encoding: CsvEncoding,
}

/// The local HTTP API (state, alarms, commands, `/healthz`, `/metrics`).
///
/// Reads are open on the loopback address; every write needs a bearer token (`hazgate
/// token add`), and so does every read from elsewhere. An address other machines can
/// reach needs TLS as well: tokens would otherwise cross the network in clear.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Where it listens, `IP:PORT` or `off` (the `--api` flag overrides): default
    /// `127.0.0.1:8088`.
    #[serde(default)]
    pub listen: Option<String>,
    /// The tokens file: default `{site file}.tokens.json`.
    #[serde(default)]
    pub tokens_path: Option<std::path::PathBuf>,
    /// PEM certificate chain and private key: TLS (rustls) on the API.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    /// Where commands are recorded when there is no uplink (with one, its
    /// `audit_path`): default `{site file}.audit.jsonl`.
    #[serde(default)]
    pub audit_path: Option<std::path::PathBuf>,
}

impl ApiConfig {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8088";

    /// Checks an address (`off`, or `IP:PORT`) against the TLS settings.
    pub fn check_listen(&self, listen: &str, p: &mut At<'_>) {
        if self.cert_file.is_some() != self.key_file.is_some() {
            p.push(
                "cert_file",
                "cert_file and key_file go together (TLS needs both)",
            );
        }
        if listen == "off" {
            return;
        }
        match listen.parse::<std::net::SocketAddr>() {
            Err(_) => p.push(
                "listen",
                format!("`{listen}` is not IP:PORT (e.g. 127.0.0.1:8088) or `off`"),
            ),
            Ok(a) if !a.ip().is_loopback() && self.cert_file.is_none() => p.push(
                "listen",
                format!(
                    "`{listen}` is reachable from the network, and the API's tokens would cross it in clear: set api.cert_file and api.key_file (TLS), or listen on 127.0.0.1 (and reach it through a TLS reverse proxy)"
                ),
            ),
            Ok(_) => {}
        }
    }
}

/// Who this gateway is, as the park platform knows it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// Chemical park identifier (化工园区).
    pub park_id: String,
    /// Enterprise identifier, e.g. its unified social credit code.
    pub enterprise_id: String,
    /// Enterprise name for people.
    pub enterprise_name: String,
    /// This gateway's identifier, unique within the enterprise.
    pub gateway_id: String,
    /// Where the judge keeps its state across restarts (acknowledgements, shelves,
    /// special operations, levels): default `{site file}.state.json`.
    #[serde(default)]
    pub state_path: Option<std::path::PathBuf>,
    /// Where threshold changes made by command are kept (they outlive a restart and
    /// win over the site file's): default `{site file}.overrides.json`. A packaged
    /// gateway keeps its site file read-only in `/etc/hazgate` and this in
    /// `/var/lib/hazgate`.
    #[serde(default)]
    pub overrides_path: Option<std::path::PathBuf>,
}

/// Site-wide acquisition settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcquisitionFile {
    /// A point whose last good value is older than this many of its device's poll
    /// periods is reported `stale`.
    #[serde(default = "default_stale_periods")]
    pub stale_after_periods: u32,
}

impl Default for AcquisitionFile {
    fn default() -> Self {
        Self {
            stale_after_periods: default_stale_periods(),
        }
    }
}

fn default_stale_periods() -> u32 {
    3
}

/// One physical or logical connection; everything on it is polled by one task.
///
/// A flat struct rather than an enum per kind so that a field that does not belong to
/// the channel's kind (`path` on a TCP channel) is reported by name, not as a vague
/// "no variant matched".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFile {
    pub id: String,
    pub kind: ChannelKind,
    /// TCP and RTU-over-TCP: the device or serial device server address.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// RTU: the serial device, e.g. `/dev/ttyS1`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub baud: Option<u32>,
    #[serde(default)]
    pub parity: Option<Parity>,
    #[serde(default)]
    pub data_bits: Option<u8>,
    #[serde(default)]
    pub stop_bits: Option<u8>,
    /// Silence kept between two transactions on the line, in milliseconds. On RS-485
    /// the Modbus RTU spec asks for 3.5 character times; slow or cheap slaves often
    /// need more. Left out, an RTU line keeps exactly 3.5 character times at its baud.
    #[serde(default)]
    pub inter_frame_delay_ms: Option<u64>,
    #[serde(default)]
    pub devices: Vec<DeviceFile>,
}

/// How a channel reaches its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Modbus TCP (MBAP framing).
    Tcp,
    /// Modbus RTU on a local serial line (RS-485 / RS-232).
    Rtu,
    /// Modbus RTU frames tunnelled through TCP by a serial device server.
    RtuOverTcp,
}

impl ChannelKind {
    /// As written in a site file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Rtu => "rtu",
            Self::RtuOverTcp => "rtu_over_tcp",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// One Modbus slave (unit id) on a channel.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFile {
    pub id: String,
    pub unit_id: u8,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Extra attempts after a failed request, before the device is declared down.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Ceiling of the exponential back-off for a device that stopped answering.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Largest register block one request may read (the protocol allows 125).
    #[serde(default = "default_max_registers")]
    pub max_registers_per_read: u16,
    /// Largest coil / discrete-input block one request may read (the protocol allows 2000).
    #[serde(default = "default_max_bits")]
    pub max_bits_per_read: u16,
    /// Unused addresses a block may span to join two points. Some devices answer
    /// exception 0x02 for any undefined register: set 0 for them.
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    /// Free text for people (vendor, model, location).
    #[serde(default)]
    pub description: String,
}

fn default_poll_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    500
}
fn default_retries() -> u32 {
    1
}
fn default_max_backoff_ms() -> u64 {
    30_000
}
fn default_max_registers() -> u16 {
    125
}
fn default_max_bits() -> u16 {
    2000
}
fn default_max_gap() -> u16 {
    16
}

/// A major hazard source (重大危险源) and the points that watch it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HazardSourceFile {
    pub id: String,
    pub name: String,
    pub kind: HazardSourceKind,
    /// GB 18218-2018 grade: 1 (most dangerous) to 4.
    pub level: u8,
    /// The corrected ratio R of GB 18218-2018, for display only.
    #[serde(default)]
    pub r_value: Option<f64>,
    /// People responsible (包保责任人), so alerts can name whom to call.
    #[serde(default)]
    pub responsible: Vec<String>,
    /// Alarm defaults per point kind for this source's points.
    #[serde(default, deserialize_with = "super::plain::choice_keys")]
    pub alarm_defaults: BTreeMap<PointKind, AlarmSettingsFile>,
    #[serde(default)]
    pub points: Vec<PointFile>,
    /// A CSV point table for this source, after `points` (relative to the site file's
    /// directory); see docs/commissioning.md for its columns.
    #[serde(default)]
    pub points_csv: Option<String>,
    #[serde(default)]
    pub points_encoding: CsvEncoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HazardSourceKind {
    TankFarm,
    Warehouse,
    ProcessUnit,
    Pipeline,
}

/// One measured or signalled quantity.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PointFile {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub kind: PointKind,
    /// Gas name from the gas table, for gas detectors.
    #[serde(default)]
    pub gas: Option<String>,
    /// Device id (within any channel) the point is read from.
    pub device: String,
    pub table: RegisterTable,
    /// Zero-based protocol address (register 40001 is holding address 0).
    pub address: u16,
    #[serde(default)]
    pub data_type: Option<DataType>,
    #[serde(default)]
    pub word_order: WordOrder,
    /// For a bool packed in a holding or input register: the bit, 0 = least significant.
    #[serde(default)]
    pub bit: Option<u8>,
    /// Engineering value = raw × scale + offset (exclusive with raw_range/eng_range).
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub offset: Option<f64>,
    /// Linear map raw_range → eng_range, e.g. 4–20 mA counts [4000, 20000] → [0, 100].
    #[serde(default)]
    pub raw_range: Option<[f64; 2]>,
    #[serde(default)]
    pub eng_range: Option<[f64; 2]>,
    /// Decimal places the engineering value is rounded to (0–9). Default: exactly the
    /// places one raw count resolves (scale 0.1 → 1); floating-point registers without
    /// scaling are not rounded.
    #[serde(default)]
    pub decimals: Option<u8>,
    /// Treat raw_range as a 4–20 mA loop: `sensor_fault` outside the fault currents,
    /// over / under range between them and 20 / 4 mA (see [`LoopCurrentFile`]).
    #[serde(default)]
    pub loop_current: Option<LoopCurrentFile>,
    #[serde(default)]
    pub unit: String,
    /// The measuring range. A value outside it is flagged over / under range; whether
    /// that is a measurement or a `sensor_fault` depends on the point's kind
    /// ([`PointKind::over_range_is_measurement`]).
    #[serde(default)]
    pub valid_range: Option<[f64; 2]>,
    /// Raw values a vendor uses to signal a detector fault (e.g. 65535).
    #[serde(default)]
    pub fault_codes: Vec<u64>,
    /// A discrete point (same device) that, when true, marks this one `sensor_fault`.
    #[serde(default)]
    pub fault_point: Option<String>,
    /// For discrete points: the value in normal operation (e.g. ESD valve open = true).
    #[serde(default)]
    pub normal: Option<bool>,
    /// This point's alarm settings (limits, deadband, delays), over the defaults.
    #[serde(default)]
    pub alarms: Option<AlarmSettingsFile>,
}

/// 4–20 mA loop supervision (NAMUR NE43). Between 20 mA and `fault_above_ma` the
/// current is a measurement above full scale (over range); above it, a failed transmitter.
/// NE43 makes 20–20.5 mA a measurement and ≥ 21 mA a failure and leaves 20.5–21 mA to
/// the vendor: `fault_above_ma` says what that band means for this point.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoopCurrentFile {
    /// Below this current the loop has failed (default 3.8 mA).
    #[serde(default)]
    pub fault_below_ma: Option<f64>,
    /// Above this current the loop has failed. Default 21.0 mA for gas detectors (the
    /// 20.5–21 mA band is saturation: a detector pinned at full scale by a large leak)
    /// and 20.5 mA for every other kind (that band is a fault, as NE43's strict reading).
    #[serde(default)]
    pub fault_above_ma: Option<f64>,
}

impl LoopCurrentFile {
    pub const FAULT_BELOW_MA: f64 = 3.8;
    pub const GAS_FAULT_ABOVE_MA: f64 = 21.0;
    pub const FAULT_ABOVE_MA: f64 = 20.5;

    /// The thresholds in force for a point of `kind`.
    pub fn resolved(&self, kind: PointKind) -> (f64, f64) {
        let above = if kind.is_gas() {
            Self::GAS_FAULT_ABOVE_MA
        } else {
            Self::FAULT_ABOVE_MA
        };
        (
            self.fault_below_ma.unwrap_or(Self::FAULT_BELOW_MA),
            self.fault_above_ma.unwrap_or(above),
        )
    }
}

/// What a point measures. Alarm defaults and risk classes key on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// Combustible gas detector, %LEL.
    CombustibleGas,
    /// Toxic gas detector, ppm of the named gas.
    ToxicGas,
    Level,
    Temperature,
    Pressure,
    Flow,
    /// Safety instrumented system trip active.
    SisTrip,
    /// Emergency shut-down valve state.
    EsdValve,
    /// Interlock bypassed (联锁旁路).
    InterlockBypass,
    /// Detector reporting a fault of its own.
    DetectorFault,
    Analog,
    Discrete,
}

impl PointKind {
    /// Whether readings of this kind are on/off signals rather than measurements.
    pub fn is_discrete(self) -> bool {
        matches!(
            self,
            Self::SisTrip
                | Self::EsdValve
                | Self::InterlockBypass
                | Self::DetectorFault
                | Self::Discrete
        )
    }

    /// Gas detectors and SIS signals: a blind spot on one of them is itself a risk.
    pub fn is_safety_critical(self) -> bool {
        matches!(
            self,
            Self::CombustibleGas | Self::ToxicGas | Self::SisTrip | Self::EsdValve
        )
    }

    pub fn is_gas(self) -> bool {
        matches!(self, Self::CombustibleGas | Self::ToxicGas)
    }

    /// Whether a value above the measuring range is a measurement (a bound: "at least
    /// this much", which drives the high limit alarms) or a sensor fault. A gas detector
    /// past full scale is a large leak (GB/T 50493-2019 §5.2: the detector keeps alarming);
    /// a process transmitter past its span is a process excursion. A generic `analog`
    /// signal has no such meaning, so it stays a fault.
    pub fn over_range_is_measurement(self) -> bool {
        self.is_gas() || self.is_process()
    }

    /// Whether a value below the measuring range is a measurement. For process
    /// transmitters yes (an empty tank, a lost pressure: the low limits fire). For gas
    /// detectors no: below zero means drift, beam block, maintenance or a fault current
    /// of the vendor's, and a detector that reads below zero cannot be trusted to see a
    /// leak — a fault, with the value kept for the engineer.
    pub fn under_range_is_measurement(self) -> bool {
        self.is_process()
    }

    /// Level, pressure, temperature and flow transmitters.
    pub fn is_process(self) -> bool {
        matches!(
            self,
            Self::Level | Self::Temperature | Self::Pressure | Self::Flow
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CombustibleGas => "combustible_gas",
            Self::ToxicGas => "toxic_gas",
            Self::Level => "level",
            Self::Temperature => "temperature",
            Self::Pressure => "pressure",
            Self::Flow => "flow",
            Self::SisTrip => "sis_trip",
            Self::EsdValve => "esd_valve",
            Self::InterlockBypass => "interlock_bypass",
            Self::DetectorFault => "detector_fault",
            Self::Analog => "analog",
            Self::Discrete => "discrete",
        }
    }
}

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterTable {
    Coil,
    DiscreteInput,
    Holding,
    Input,
}

impl RegisterTable {
    /// As written in a site file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coil => "coil",
            Self::DiscreteInput => "discrete_input",
            Self::Holding => "holding",
            Self::Input => "input",
        }
    }

    /// The leading digit of Modicon numbering, which vendors' maps use: coil 0xxxx,
    /// discrete input 1xxxx, input register 3xxxx, holding register 4xxxx.
    pub fn modicon_prefix(self) -> u32 {
        match self {
            Self::Coil => 0,
            Self::DiscreteInput => 1,
            Self::Input => 3,
            Self::Holding => 4,
        }
    }

    /// Coils and discrete inputs are addressed per bit, registers per 16-bit word.
    pub fn is_bit_table(self) -> bool {
        matches!(self, Self::Coil | Self::DiscreteInput)
    }

    pub fn function_code(self) -> u8 {
        match self {
            Self::Coil => 0x01,
            Self::DiscreteInput => 0x02,
            Self::Holding => 0x03,
            Self::Input => 0x04,
        }
    }
}

/// How register contents are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Bool,
    U16,
    I16,
    U32,
    I32,
    F32,
    U64,
    I64,
    F64,
}

impl DataType {
    /// Registers occupied (bools take one register, or one bit in a bit table).
    pub fn word_count(self) -> u16 {
        match self {
            Self::Bool | Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
            Self::U64 | Self::I64 | Self::F64 => 4,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }
}

/// Byte order of a multi-byte value, named by where the bytes of the big-endian value
/// `A B C D` end up. `ABCD` is the Modbus default; `CDAB` (word-swapped) is common in
/// Chinese instruments; `BADC` swaps bytes within words; `DCBA` is little-endian.
/// For 16-bit values only the byte swap matters; for 64-bit values the pattern
/// extends word-wise (CDAB reverses all four words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum WordOrder {
    #[default]
    #[serde(alias = "abcd")]
    ABCD,
    #[serde(alias = "badc")]
    BADC,
    #[serde(alias = "cdab")]
    CDAB,
    #[serde(alias = "dcba")]
    DCBA,
}

impl WordOrder {
    pub const ALL: [WordOrder; 4] = [Self::ABCD, Self::BADC, Self::CDAB, Self::DCBA];

    /// Bytes swapped inside each 16-bit register.
    pub fn swaps_bytes(self) -> bool {
        matches!(self, Self::BADC | Self::DCBA)
    }

    /// Registers in least-significant-first order.
    pub fn swaps_words(self) -> bool {
        matches!(self, Self::CDAB | Self::DCBA)
    }
}

/// How a CSV point table is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CsvEncoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK is read as GB18030, its superset.
    Gbk,
    Gb18030,
}
