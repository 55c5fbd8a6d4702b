//! Topic names: `{prefix}/v1/{park}/{enterprise}/{gateway}/{stream…}`, parsed and
//! rendered here only.

use super::VERSION;

/// What a topic carries, after the gateway's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `telemetry`: readings.
    Telemetry,
    /// `alarm`: alarm and threshold events.
    Alarm,
    /// `risk`: level changes and special operations.
    Risk,
    /// `risk/{scope}`: the retained level of one hazard source or `enterprise`.
    RiskOf,
    /// `status`: retained; the Last Will says offline.
    Status,
    /// `alarms`: retained; every alarm standing at the gateway (v1.6).
    ActiveAlarms,
    /// `points/{table}/{first}`: retained pages of the point table (v1.4).
    Points,
    /// `cmd/{name}`: a command to the gateway.
    Command,
    /// `cmd/{name}/reply`: its answer.
    Reply,
}

impl Stream {
    /// Every stream a gateway publishes on (the centre reads them all, so it sees each
    /// message of the gateway's event stream and can tell loss from a topic it skipped).
    /// Point tables first: a centre subscribing in this order gets the retained tables
    /// before the samples that use them.
    pub const PUBLISHED: [Stream; 8] = [
        Stream::Points,
        Stream::Telemetry,
        Stream::Alarm,
        Stream::Risk,
        Stream::RiskOf,
        Stream::Status,
        Stream::ActiveAlarms,
        Stream::Reply,
    ];

    /// The topic levels after the gateway, as a subscription filter.
    pub fn filter(self) -> &'static str {
        match self {
            Stream::Telemetry => "telemetry",
            Stream::Alarm => "alarm",
            Stream::Risk => "risk",
            Stream::RiskOf => "risk/+",
            Stream::Status => "status",
            Stream::ActiveAlarms => "alarms",
            Stream::Points => "points/+/+",
            Stream::Command => "cmd/+",
            Stream::Reply => "cmd/+/reply",
        }
    }

    /// The payload `type`s this stream may carry.
    pub fn types(self) -> &'static [&'static str] {
        match self {
            Stream::Telemetry => &["telemetry", "samples"],
            Stream::Points => &["points"],
            Stream::Alarm => &["alarm", "thresholds"],
            Stream::Risk => &["risk", "special_operation"],
            Stream::RiskOf => &["risk"],
            Stream::Status => &["status"],
            Stream::ActiveAlarms => &["active_alarms"],
            Stream::Reply => &["command_reply"],
            Stream::Command => &[],
        }
    }
}

/// One gateway's identity, as its topics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GatewayPath<'a> {
    pub park: &'a str,
    pub enterprise: &'a str,
    pub gateway: &'a str,
}

impl<'a> GatewayPath<'a> {
    /// Reads back what [`Display`](std::fmt::Display) writes: `park/enterprise/gateway`.
    pub fn parse(path: &'a str) -> Option<Self> {
        let mut parts = path.splitn(3, '/');
        let (park, enterprise, gateway) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            park,
            enterprise,
            gateway,
        })
    }
}

/// `park/enterprise/gateway`: a gateway id is unique within its enterprise only, so
/// the whole path is what names one (ingest's clock estimates are keyed by it).
impl std::fmt::Display for GatewayPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.park, self.enterprise, self.gateway)
    }
}

/// A parsed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic<'a> {
    pub gateway: GatewayPath<'a>,
    pub stream: Stream,
    /// The scope of `risk/{scope}`, the command of `cmd/{name}[/reply]`.
    pub name: Option<&'a str>,
}

impl<'a> Topic<'a> {
    /// The topic, if it is one of the contract's under `prefix`.
    pub fn parse(prefix: &str, topic: &'a str) -> Option<Self> {
        let mut levels = topic.split('/');
        let (p, v) = (levels.next()?, levels.next()?);
        if p != prefix || v != VERSION {
            return None;
        }
        let gateway = GatewayPath {
            park: levels.next()?,
            enterprise: levels.next()?,
            gateway: levels.next()?,
        };
        let rest: Vec<&str> = levels.collect();
        let (stream, name) = match rest.as_slice() {
            ["telemetry"] => (Stream::Telemetry, None),
            ["alarm"] => (Stream::Alarm, None),
            ["risk"] => (Stream::Risk, None),
            ["status"] => (Stream::Status, None),
            ["alarms"] => (Stream::ActiveAlarms, None),
            ["risk", scope] if !scope.is_empty() => (Stream::RiskOf, Some(*scope)),
            ["points", table, first] if !table.is_empty() && !first.is_empty() => {
                (Stream::Points, Some(*table))
            }
            ["cmd", name] if !name.is_empty() => (Stream::Command, Some(*name)),
            ["cmd", name, "reply"] if !name.is_empty() => (Stream::Reply, Some(*name)),
            _ => return None,
        };
        Some(Self {
            gateway,
            stream,
            name,
        })
    }
}

/// The topics of one gateway, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, g: GatewayPath<'_>) -> Self {
        Self {
            base: format!(
                "{prefix}/{VERSION}/{}/{}/{}",
                g.park, g.enterprise, g.gateway
            ),
        }
    }

    pub fn telemetry(&self) -> String {
        format!("{}/telemetry", self.base)
    }
    pub fn alarm(&self) -> String {
        format!("{}/alarm", self.base)
    }
    pub fn risk(&self) -> String {
        format!("{}/risk", self.base)
    }
    /// Retained current level of one hazard source (or `enterprise`).
    pub fn risk_of(&self, scope: &str) -> String {
        format!("{}/risk/{scope}", self.base)
    }
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    /// Retained list of the alarms standing at the gateway (v1.6).
    pub fn active_alarms(&self) -> String {
        format!("{}/alarms", self.base)
    }
    /// Retained page of the point table `table` starting at point `first`.
    pub fn points(&self, table: &str, first: usize) -> String {
        format!("{}/points/{table}/{first}", self.base)
    }
    /// What the gateway subscribes to for commands.
    pub fn commands(&self) -> String {
        format!("{}/{}", self.base, Stream::Command.filter())
    }
    /// Where a command to this gateway goes (the centre's feedback).
    pub fn command(&self, name: &str) -> String {
        format!("{}/cmd/{name}", self.base)
    }
    pub fn reply(&self, command: &str) -> String {
        format!("{}/cmd/{command}/reply", self.base)
    }

    /// The command name of a topic of this gateway's under `cmd/`, if it is one.
    pub fn command_name<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let rest = topic.strip_prefix(self.base.as_str())?;
        match rest.strip_prefix("/cmd/")? {
            name if !name.is_empty() && !name.contains('/') => Some(name),
            _ => None,
        }
    }
}

/// Subscription filter for `stream` of every gateway under `prefix`.
pub fn every_gateway(prefix: &str, stream: Stream) -> String {
    format!("{prefix}/{VERSION}/+/+/+/{}", stream.filter())
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GatewayPath<'static> = GatewayPath {
        park: "CP-320500-01",
        enterprise: "91320500MA1DEMO01X",
        gateway: "GW-01",
    };

    #[test]
    fn a_gateway_path_reads_back_what_it_writes() {
        let text = G.to_string();
        assert_eq!(text, "CP-320500-01/91320500MA1DEMO01X/GW-01");
        assert_eq!(GatewayPath::parse(&text), Some(G));
        assert_eq!(GatewayPath::parse("CP/ENT"), None);
    }

    #[test]
    fn rendered_topics_parse_back_to_what_they_name() {
        let t = Topics::new("hazgate", G);
        assert_eq!(
            t.telemetry(),
            "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01/telemetry"
        );
        for (topic, stream, name) in [
            (t.telemetry(), Stream::Telemetry, None),
            (t.alarm(), Stream::Alarm, None),
            (t.risk(), Stream::Risk, None),
            (t.risk_of("HS-01"), Stream::RiskOf, Some("HS-01")),
            (t.status(), Stream::Status, None),
            (t.reply("ack"), Stream::Reply, Some("ack")),
            (
                t.commands().replace('+', "ack"),
                Stream::Command,
                Some("ack"),
            ),
        ] {
            let parsed = Topic::parse("hazgate", &topic).unwrap();
            assert_eq!(
                (parsed.gateway, parsed.stream, parsed.name),
                (G, stream, name)
            );
        }
    }

    #[test]
    fn foreign_topics_are_not_parsed() {
        for topic in [
            "other/v1/P/E/G/telemetry",
            "hazgate/v2/P/E/G/telemetry",
            "hazgate/v1/P/E/G",
            "hazgate/v1/P/E/G/telemetry/x",
            "hazgate/v1/P/E/G/risk/",
            "hazgate/v1/P/E/G/cmd//reply",
            "hazgate/v1/P/E/G/nope",
        ] {
            assert_eq!(Topic::parse("hazgate", topic), None, "{topic}");
        }
    }

    #[test]
    fn a_reply_is_not_a_command() {
        let t = Topics::new("hazgate", G);
        assert_eq!(
            t.command_name(&t.commands().replace('+', "ack")),
            Some("ack")
        );
        assert_eq!(t.command_name(&t.reply("ack")), None);
        assert_eq!(t.command_name("other/v1/x/cmd/ack"), None);
    }
}
