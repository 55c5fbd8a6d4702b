//! Device simulator: serves a site file's devices as Modbus slaves.
//!
//! Each channel of the site becomes one server — a TCP listener (unit ids routed to
//! devices), an RTU-over-TCP listener, or an RTU slave on a serial path (one end of a
//! `socat` pty pair, or an in-process pty for the demo). Register banks are laid out
//! from the same site model the gateway reads, through [`crate::acquire::decode::encode`],
//! so what the simulator writes is exactly what a correctly configured gateway decodes.
//!
//! For demos, training and load benchmarks. Tests of the acquisition path use peers
//! that are not our code (pymodbus) wherever possible.

pub mod scenario;

use std::{
    collections::HashMap,
    future::{ready, Ready},
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::{net::TcpListener, task::JoinSet, time::Instant};
use tokio_modbus::{server::Service, ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    acquire::decode::{encode, Number},
    model::{DataType, DeviceId, Point, RegisterTable, Site, Transport},
};

pub use scenario::{DeviceMode, Scenario, ScenarioKind, SimValue, Timing};

/// One simulated slave's memory.
#[derive(Debug, Clone)]
struct Bank {
    id: DeviceId,
    coils: Vec<bool>,
    discrete: Vec<bool>,
    holding: Vec<u16>,
    input: Vec<u16>,
    mode: DeviceMode,
    /// Holding registers / coils written by a Modbus master: forced, the scenario no
    /// longer drives them (as a forced value on a training rig).
    forced: std::collections::HashSet<(RegisterTable, u16)>,
}

impl Bank {
    fn sized_for(site: &Site, id: DeviceId, points: &[crate::model::PointIndex]) -> Self {
        let mut size = [0usize; 4];
        for &p in points {
            let r = site.point(p).register;
            let slot = r.table as usize;
            size[slot] = size[slot].max(usize::from(r.address) + usize::from(r.width()));
        }
        // A little headroom past the last point, as real devices have.
        let pad = |n: usize| if n == 0 { 0 } else { n + 8 };
        Self {
            id,
            coils: vec![false; pad(size[RegisterTable::Coil as usize])],
            discrete: vec![false; pad(size[RegisterTable::DiscreteInput as usize])],
            holding: vec![0; pad(size[RegisterTable::Holding as usize])],
            input: vec![0; pad(size[RegisterTable::Input as usize])],
            mode: DeviceMode::Normal,
            forced: Default::default(),
        }
    }

    fn write_point(&mut self, point: &Point, value: SimValue) {
        let r = point.register;
        if self.forced.contains(&(r.table, r.address)) {
            return;
        }
        let addr = usize::from(r.address);
        match r.table {
            RegisterTable::Coil | RegisterTable::DiscreteInput => {
                let bits = if r.table == RegisterTable::Coil {
                    &mut self.coils
                } else {
                    &mut self.discrete
                };
                if let (Some(slot), SimValue::Bit(b)) = (bits.get_mut(addr), value) {
                    *slot = b;
                }
            }
            RegisterTable::Holding | RegisterTable::Input => {
                let regs = if r.table == RegisterTable::Holding {
                    &mut self.holding
                } else {
                    &mut self.input
                };
                let words = match (r.data_type, value) {
                    (DataType::Bool, SimValue::Bit(b)) => {
                        let bit = r.bit.unwrap_or(0);
                        let old = regs.get(addr).copied().unwrap_or(0);
                        vec![if b {
                            old | (1 << bit)
                        } else {
                            old & !(1 << bit)
                        }]
                    }
                    (DataType::Bool, _) | (_, SimValue::Bit(_)) => return,
                    (t, SimValue::Eng(eng)) => {
                        encode(Number::Float(point.scaling.invert(eng)), t, r.word_order)
                    }
                    (t, SimValue::LoopMa(ma)) => {
                        let raw = point.loop_current.as_ref().map_or(0.0, |lc| lc.raw_at(ma));
                        encode(Number::Float(raw), t, r.word_order)
                    }
                };
                if let Some(dst) = regs.get_mut(addr..addr + words.len()) {
                    dst.copy_from_slice(&words);
                }
            }
        }
    }
}

/// The slaves behind one channel, keyed by unit id.
#[derive(Debug)]
pub struct SimChannel {
    banks: Mutex<HashMap<u8, Bank>>,
    /// RTU slaves stay silent for an unknown address; a TCP gateway answers 0x0B.
    rtu: bool,
    /// Requests answered or ignored, for load figures and planner checks.
    pub requests: AtomicU64,
}

/// The Modbus service of one channel.
#[derive(Clone)]
struct SimService(Arc<SimChannel>);

impl Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        let mut banks = self.0.banks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bank) = banks.get_mut(&req.slave) else {
            return ready(if self.0.rtu {
                Ok(None)
            } else {
                Err(ExceptionCode::GatewayTargetDevice)
            });
        };
        match bank.mode {
            DeviceMode::Silent => return ready(Ok(None)),
            DeviceMode::Exception(code) => return ready(Err(ExceptionCode::new(code))),
            DeviceMode::Normal => {}
        }
        ready(answer(bank, req.request).map(Some))
    }
}

fn range<T: Clone>(table: &[T], addr: u16, cnt: u16) -> Result<Vec<T>, ExceptionCode> {
    let (a, n) = (usize::from(addr), usize::from(cnt));
    if n == 0 {
        return Err(ExceptionCode::IllegalDataValue);
    }
    table
        .get(a..a + n)
        .map(<[T]>::to_vec)
        .ok_or(ExceptionCode::IllegalDataAddress)
}

fn answer(bank: &mut Bank, request: Request<'static>) -> Result<Response, ExceptionCode> {
    match request {
        Request::ReadCoils(a, n) => range(&bank.coils, a, n).map(Response::ReadCoils),
        Request::ReadDiscreteInputs(a, n) => {
            range(&bank.discrete, a, n).map(Response::ReadDiscreteInputs)
        }
        Request::ReadHoldingRegisters(a, n) => {
            range(&bank.holding, a, n).map(Response::ReadHoldingRegisters)
        }
        Request::ReadInputRegisters(a, n) => {
            range(&bank.input, a, n).map(Response::ReadInputRegisters)
        }
        Request::WriteSingleRegister(a, w) => {
            let slot = bank
                .holding
                .get_mut(usize::from(a))
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            *slot = w;
            bank.forced.insert((RegisterTable::Holding, a));
            Ok(Response::WriteSingleRegister(a, w))
        }
        Request::WriteMultipleRegisters(a, ws) => {
            let start = usize::from(a);
            let dst = bank
                .holding
                .get_mut(start..start + ws.len())
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            dst.copy_from_slice(&ws);
            for i in 0..ws.len() as u16 {
                bank.forced.insert((RegisterTable::Holding, a + i));
            }
            Ok(Response::WriteMultipleRegisters(a, ws.len() as u16))
        }
        Request::WriteSingleCoil(a, b) => {
            let slot = bank
                .coils
                .get_mut(usize::from(a))
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            *slot = b;
            bank.forced.insert((RegisterTable::Coil, a));
            Ok(Response::WriteSingleCoil(a, b))
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

/// A running simulation of a whole site.
pub struct Simulator {
    site: Arc<Site>,
    scenario: Scenario,
    channels: Vec<Arc<SimChannel>>,
    started: Instant,
}

impl Simulator {
    pub fn new(site: Arc<Site>, scenario: Scenario) -> Arc<Self> {
        let channels = site
            .channels
            .iter()
            .map(|c| {
                let banks = c
                    .devices
                    .iter()
                    .map(|d| (d.unit_id, Bank::sized_for(&site, d.id.clone(), &d.points)))
                    .collect();
                Arc::new(SimChannel {
                    banks: Mutex::new(banks),
                    rtu: matches!(c.transport, Transport::Rtu { .. }),
                    requests: AtomicU64::new(0),
                })
            })
            .collect();
        let sim = Arc::new(Self {
            site,
            scenario,
            channels,
            started: Instant::now(),
        });
        sim.update(&mut SmallRng::seed_from_u64(1));
        sim
    }

    pub fn channel(&self, index: usize) -> &Arc<SimChannel> {
        &self.channels[index]
    }

    /// Total requests served across all channels.
    pub fn requests(&self) -> u64 {
        self.channels
            .iter()
            .map(|c| c.requests.load(Ordering::Relaxed))
            .sum()
    }

    /// Writes every point's scenario value into the banks.
    fn update(&self, rng: &mut SmallRng) {
        let t = self.started.elapsed().as_secs_f64();
        for (ci, ch) in self.site.channels.iter().enumerate() {
            let mut banks = self.channels[ci]
                .banks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for d in &ch.devices {
                let Some(bank) = banks.get_mut(&d.unit_id) else {
                    continue;
                };
                bank.mode = self.scenario.device_mode(&bank.id, t);
                for &p in &d.points {
                    let point = self.site.point(p);
                    let v = self.scenario.value(point, t, rng.random_range(-1.0..=1.0));
                    bank.write_point(point, v);
                }
            }
        }
    }

    /// Advances the scenario every `tick` until cancelled.
    pub async fn run_scenario(self: Arc<Self>, tick: Duration, cancel: CancellationToken) {
        let mut rng = SmallRng::from_os_rng();
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = interval.tick() => self.update(&mut rng),
            }
        }
    }
}

/// Where one channel's simulated server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    RtuOverTcp(SocketAddr),
    Serial(String),
}

/// Serves a TCP (MBAP) or RTU-over-TCP listener for a channel until cancelled.
pub async fn serve_tcp(
    channel: Arc<SimChannel>,
    listener: TcpListener,
    rtu_framing: bool,
    cancel: CancellationToken,
) {
    let service = SimService(channel);
    let on_connected = |stream, _addr| {
        let service = service.clone();
        async move { io::Result::Ok(Some((service, stream))) }
    };
    let on_error = |e: io::Error| warn!(error = %e, "simulator connection ended with an error");
    let result = if rtu_framing {
        tokio_modbus::server::rtu_over_tcp::Server::new(listener)
            .serve_until(&on_connected, on_error, cancel.cancelled_owned())
            .await
    } else {
        tokio_modbus::server::tcp::Server::new(listener)
            .serve_until(&on_connected, on_error, cancel.cancelled_owned())
            .await
    };
    if let Err(e) = result {
        warn!(error = %e, "simulator listener stopped");
    }
}

/// Serves an RTU slave on a serial port. tokio-modbus's RTU server stops at the first
/// undecodable frame; reopen `path` and carry on, as a real slave would.
pub async fn serve_serial_path(channel: Arc<SimChannel>, path: String, cancel: CancellationToken) {
    while !cancel.is_cancelled() {
        match tokio_serial::SerialStream::open(&tokio_serial::new(&path, 9600)) {
            Ok(port) => serve_serial(channel.clone(), port, cancel.clone()).await,
            Err(e) => warn!(path, error = %e, "simulator cannot open serial port"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Serves an RTU slave on an already open port until it fails or `cancel` fires.
pub async fn serve_serial(
    channel: Arc<SimChannel>,
    port: tokio_serial::SerialStream,
    cancel: CancellationToken,
) {
    let server = tokio_modbus::server::rtu::Server::new(port);
    match server
        .serve_until(SimService(channel), cancel.cancelled_owned())
        .await
    {
        Ok(_) => {}
        Err(e) => warn!(error = %e, "simulator RTU server stopped; restarting"),
    }
}

/// How to expose one channel instead of what the site file says.
pub enum Listen {
    /// A TCP address; MBAP framing for Modbus TCP channels, RTU framing otherwise.
    Addr(SocketAddr),
    /// A serial device path (e.g. the far end of a `socat` pty pair).
    Path(String),
    /// An already open port (e.g. the master side of an in-process pty pair).
    Port(tokio_serial::SerialStream),
}

/// Starts servers for every channel of the site plus the scenario ticker.
/// Returns the endpoints actually used (TCP port 0 resolves to the bound port).
pub async fn start(
    sim: &Arc<Simulator>,
    mut listen: HashMap<usize, Listen>,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> io::Result<Vec<Endpoint>> {
    let mut endpoints = Vec::new();
    for (ci, ch) in sim.site.channels.iter().enumerate() {
        let how = match listen.remove(&ci) {
            Some(l) => l,
            None => match &ch.transport {
                Transport::Tcp { host, port } | Transport::RtuOverTcp { host, port } => {
                    Listen::Addr(resolve(host, *port).await?)
                }
                Transport::Rtu { path, .. } => Listen::Path(path.clone()),
            },
        };
        let channel = sim.channels[ci].clone();
        let endpoint = match how {
            Listen::Addr(addr) => {
                let rtu_framing = !matches!(ch.transport, Transport::Tcp { .. });
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("bind {addr} for channel {}: {e}", ch.id))
                })?;
                let bound = listener.local_addr()?;
                info!(channel = %ch.id, %bound, rtu_framing, "simulator listening");
                tasks.spawn(serve_tcp(channel, listener, rtu_framing, cancel.clone()));
                if rtu_framing {
                    Endpoint::RtuOverTcp(bound)
                } else {
                    Endpoint::Tcp(bound)
                }
            }
            Listen::Path(path) => {
                info!(channel = %ch.id, path, "simulator serving RTU");
                tasks.spawn(serve_serial_path(channel, path.clone(), cancel.clone()));
                Endpoint::Serial(path)
            }
            Listen::Port(port) => {
                info!(channel = %ch.id, "simulator serving RTU on an open port");
                tasks.spawn(serve_serial(channel, port, cancel.clone()));
                Endpoint::Serial(String::new())
            }
        };
        endpoints.push(endpoint);
    }
    tasks.spawn(
        sim.clone()
            .run_scenario(Duration::from_millis(100), cancel.clone()),
    );
    Ok(endpoints)
}

async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {host}")))
}
