//! The whole response path of a poll, from bytes on the wire to readings: tokio-modbus's
//! RTU or TCP client codec, hazgate's response matching (`block_data`) and decoding of
//! every point of the block (`decode_block`). Invariants: no panic, no hang, and data
//! only ever comes back at exactly the requested length.
//!
//! Shared by the cargo-fuzz target and the corpus replay under `cargo test`.

use std::{sync::OnceLock, time::Duration};

use hazgate::{
    acquire::{
        device::{decode_block, PlannedDevice},
        link::{block_data, request_for, BlockData},
    },
    model::{load_site, Site, SiteSource},
    reading::{Quality, RangeFlag, Timestamp, Value},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_modbus::{client::Client, Slave};

const SITE: &str = r#"
[gateway]
park_id = "P"
enterprise_id = "E"
enterprise_name = "Fuzz"
gateway_id = "G"
[[channels]]
id = "c"
kind = "tcp"
host = "127.0.0.1"
port = 502
  [[channels.devices]]
  id = "D"
  unit_id = 1
[[hazard_sources]]
id = "HS"
name = "Fuzz"
kind = "tank_farm"
level = 1
  [[hazard_sources.points]]
  id = "F"
  kind = "combustible_gas"
  device = "D"
  table = "holding"
  address = 0
  data_type = "f32"
  word_order = "CDAB"
  valid_range = [0.0, 100.0]
  [[hazard_sources.points]]
  id = "L"
  kind = "level"
  device = "D"
  table = "holding"
  address = 2
  data_type = "u16"
  raw_range = [4000.0, 20000.0]
  eng_range = [0.0, 100.0]
  loop_current = { fault_below_ma = 3.8, fault_above_ma = 20.5 }
  [[hazard_sources.points]]
  id = "B"
  kind = "sis_trip"
  device = "D"
  table = "holding"
  address = 3
  bit = 7
  [[hazard_sources.points]]
  id = "I"
  kind = "analog"
  device = "D"
  table = "holding"
  address = 4
  data_type = "i64"
  word_order = "DCBA"
  fault_codes = [0]
  [[hazard_sources.points]]
  id = "C0"
  kind = "esd_valve"
  device = "D"
  table = "coil"
  address = 0
  [[hazard_sources.points]]
  id = "C9"
  kind = "discrete"
  device = "D"
  table = "discrete_input"
  address = 9
  [[hazard_sources.points]]
  id = "IN"
  kind = "pressure"
  device = "D"
  table = "input"
  address = 1
  data_type = "f64"
  word_order = "BADC"
"#;

fn fixture() -> &'static (Site, PlannedDevice) {
    static F: OnceLock<(Site, PlannedDevice)> = OnceLock::new();
    F.get_or_init(|| {
        let site = load_site(SiteSource::Text {
            name: "fuzz",
            toml: SITE,
        })
        .expect("fuzz site is valid");
        let dev = PlannedDevice::new(&site, 0, 0);
        (site, dev)
    })
}

/// Checks one input; true when it was accepted (so a corpus can show it reaches the
/// accepting path, not only the refusals).
pub fn check(data: &[u8]) -> bool {
    let Some((&selector, wire)) = data.split_first() else {
        return false;
    };
    let (site, dev) = fixture();
    let block = &dev.blocks[usize::from(selector) % dev.blocks.len()];
    let rtu = selector & 0x80 != 0;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return false;
    };
    let wire = wire.to_vec();
    rt.block_on(async move {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 256];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(&wire).await;
            // Hold the line open: a short answer must end in a timeout, not a hang.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let mut ctx = if rtu {
            tokio_modbus::client::rtu::attach_slave(client, Slave(1))
        } else {
            tokio_modbus::client::tcp::attach_slave(client, Slave(1))
        };
        let answer =
            tokio::time::timeout(Duration::from_millis(500), ctx.call(request_for(block))).await;
        peer.abort();
        let Ok(Ok(Ok(response))) = answer else {
            return false;
        };
        let Ok(data) = block_data(block, response) else {
            return false;
        };
        match &data {
            BlockData::Words(w) => assert_eq!(w.len(), usize::from(block.count)),
            BlockData::Bits(b) => assert_eq!(b.len(), usize::from(block.count)),
        }
        let mut readings = Vec::new();
        decode_block(site, block, &data, Timestamp(0), &mut readings);
        assert_eq!(readings.len(), block.points.len());
        for r in readings {
            if r.range != RangeFlag::Within {
                assert!(r.value.is_some(), "an out-of-range reading keeps its value");
            }
            if r.quality == Quality::Good {
                match r.value {
                    Some(Value::Analog(v)) => assert!(v.is_finite()),
                    Some(Value::Discrete(_)) => {}
                    None => panic!("good reading without a value"),
                }
            }
        }
        true
    })
}
