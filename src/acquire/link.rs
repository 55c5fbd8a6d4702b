//! One channel's connection and its request/response transactions.
//!
//! tokio-modbus has neither timeouts nor reconnects, and a context that timed out
//! is poisoned: on TCP the late answer collides with the next transaction id, on RTU
//! there is no id at all and a late answer would be taken for the next question. So
//! every call is bounded by the device's timeout, and any transport failure drops the
//! context; the next transaction connects afresh (after a quiet gap on RTU lines, so
//! stray bytes drain before the next request).

use std::{io, time::Duration};

use tokio::{
    net::TcpStream,
    time::{sleep_until, timeout, Instant},
};
use tokio_modbus::{
    client::{rtu, tcp, Client, Context},
    slave::SlaveContext,
    Request, Response, Slave,
};

use crate::model::{Parity, RegisterTable, Transport};

use super::plan::Block;

/// What came back for one block.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockData {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

/// Why a block has no data. Every kind but [`BlockError::Exception`] is a
/// communication failure: the link is treated as down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The device answered with a Modbus exception: it is alive.
    #[error("Modbus exception {0}")]
    Exception(u8),
    #[error("connect {transport}: {error}")]
    Connect { transport: String, error: String },
    #[error("timeout after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection failed mid-transaction, or the frame was garbled.
    #[error("transport: {0}")]
    Transport(String),
    /// A well-formed answer to another question (function or length).
    #[error("response does not match request of {count} from {start}: {got}")]
    Mismatch { count: u16, start: u16, got: String },
}

impl BlockError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Whether the link is to be treated as down (anything but an exception).
    pub fn is_comm(&self) -> bool {
        !matches!(self, Self::Exception(_))
    }
}

/// A channel's link to its devices. One transaction at a time, by construction
/// (`&mut self`), which is what a half-duplex RS-485 line requires.
pub struct Link {
    transport: Transport,
    inter_frame_delay: Duration,
    ctx: Option<Context>,
    /// Earliest instant the next frame may go out.
    quiet_until: Instant,
    pub connects: u64,
}

impl Link {
    pub fn new(transport: Transport, inter_frame_delay: Duration) -> Self {
        Self {
            transport,
            inter_frame_delay,
            ctx: None,
            quiet_until: Instant::now(),
            connects: 0,
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn is_connected(&self) -> bool {
        self.ctx.is_some()
    }

    async fn connect(&mut self, deadline: Duration) -> io::Result<Context> {
        self.connects += 1;
        match &self.transport {
            Transport::Tcp { host, port } => {
                let stream = connect_tcp(host, *port, deadline).await?;
                Ok(tcp::attach(stream))
            }
            Transport::RtuOverTcp { host, port } => {
                let stream = connect_tcp(host, *port, deadline).await?;
                Ok(rtu::attach(stream))
            }
            Transport::Rtu {
                path,
                baud,
                parity,
                data_bits,
                stop_bits,
            } => {
                let builder = tokio_serial::new(path, *baud)
                    .parity(match parity {
                        Parity::None => tokio_serial::Parity::None,
                        Parity::Even => tokio_serial::Parity::Even,
                        Parity::Odd => tokio_serial::Parity::Odd,
                    })
                    .data_bits(match data_bits {
                        5 => tokio_serial::DataBits::Five,
                        6 => tokio_serial::DataBits::Six,
                        7 => tokio_serial::DataBits::Seven,
                        _ => tokio_serial::DataBits::Eight,
                    })
                    .stop_bits(if *stop_bits == 2 {
                        tokio_serial::StopBits::Two
                    } else {
                        tokio_serial::StopBits::One
                    });
                let port = tokio_serial::SerialStream::open(&builder)
                    .map_err(|e| io::Error::other(format!("open {path}: {e}")))?;
                Ok(rtu::attach(port))
            }
        }
    }

    /// Drops the connection; the next transaction reconnects.
    pub async fn disconnect(&mut self) {
        if let Some(mut ctx) = self.ctx.take() {
            // Best effort: the peer may already be gone.
            let _ = timeout(Duration::from_millis(100), ctx.disconnect()).await;
        }
    }

    /// Reads one block from `unit`, bounded by `deadline`.
    pub async fn read(
        &mut self,
        unit: u8,
        block: &Block,
        deadline: Duration,
    ) -> Result<BlockData, BlockError> {
        sleep_until(self.quiet_until).await;
        let result = self.transact(unit, block, deadline).await;
        let rtu = self.transport.is_rtu_framed();
        let mut gap = self.inter_frame_delay;
        if result.as_ref().is_err_and(BlockError::is_comm) {
            self.disconnect().await;
            // On an RTU line, let a late or garbled answer drain before the next frame.
            if rtu {
                gap = gap.max(Duration::from_millis(50));
            }
        }
        self.quiet_until = Instant::now() + gap;
        result
    }

    async fn transact(
        &mut self,
        unit: u8,
        block: &Block,
        deadline: Duration,
    ) -> Result<BlockData, BlockError> {
        let started = Instant::now();
        let mut ctx = match self.ctx.take() {
            Some(ctx) => ctx,
            None => self
                .connect(deadline)
                .await
                .map_err(|e| BlockError::Connect {
                    transport: self.transport.to_string(),
                    error: e.to_string(),
                })?,
        };
        ctx.set_slave(Slave(unit));
        let remaining = deadline
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let answer = match timeout(remaining, ctx.call(request_for(block))).await {
            Err(_) => return Err(BlockError::Timeout(deadline)),
            Ok(Err(e)) => return Err(BlockError::Transport(e.to_string())),
            Ok(Ok(Err(exception))) => {
                self.ctx = Some(ctx);
                return Err(BlockError::Exception(u8::from(exception)));
            }
            Ok(Ok(Ok(response))) => response,
        };
        let data = block_data(block, answer)?;
        self.ctx = Some(ctx);
        Ok(data)
    }
}

/// The read request for a block.
pub fn request_for(block: &Block) -> Request<'static> {
    match block.table {
        RegisterTable::Coil => Request::ReadCoils(block.start, block.count),
        RegisterTable::DiscreteInput => Request::ReadDiscreteInputs(block.start, block.count),
        RegisterTable::Holding => Request::ReadHoldingRegisters(block.start, block.count),
        RegisterTable::Input => Request::ReadInputRegisters(block.start, block.count),
    }
}

/// Checks that a decoded response answers `block` exactly (function and length) and
/// extracts its data. Anything else is a communication failure, never data.
pub fn block_data(block: &Block, answer: Response) -> Result<BlockData, BlockError> {
    let count = usize::from(block.count);
    match (block.table, answer) {
        (RegisterTable::Coil, Response::ReadCoils(bits))
        | (RegisterTable::DiscreteInput, Response::ReadDiscreteInputs(bits))
            if bits.len() >= count =>
        {
            Ok(BlockData::Bits(bits[..count].to_vec()))
        }
        (RegisterTable::Holding, Response::ReadHoldingRegisters(words))
        | (RegisterTable::Input, Response::ReadInputRegisters(words))
            if words.len() == count =>
        {
            Ok(BlockData::Words(words))
        }
        (_, other) => Err(BlockError::Mismatch {
            count: block.count,
            start: block.start,
            got: describe(&other),
        }),
    }
}

fn describe(r: &Response) -> String {
    match r {
        Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => format!("{} bits", b.len()),
        Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w) => {
            format!("{} registers", w.len())
        }
        other => format!("{other:?}"),
    }
}

async fn connect_tcp(host: &str, port: u16, deadline: Duration) -> io::Result<TcpStream> {
    let stream = timeout(deadline, TcpStream::connect((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
