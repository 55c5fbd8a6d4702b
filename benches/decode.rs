//! Hot path of acquisition: slicing a block answer into points, decoding and quality
//! evaluation. Reported per point.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hazgate::{
    acquire::{
        decode::{encode, Number},
        device::{decode_block, PlannedDevice},
        link::BlockData,
    },
    model::{load_site, SiteSource},
    reading::Timestamp,
};

/// 60 CDAB floats with a valid range and 60 4–20 mA counts with loop supervision.
fn site_toml() -> String {
    let mut s = String::from(
        "[gateway]\npark_id = \"P\"\nenterprise_id = \"E\"\nenterprise_name = \"Bench\"\ngateway_id = \"G\"\n\n\
         [[channels]]\nid = \"c\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 502\n\n\
         [[channels.devices]]\nid = \"D\"\nunit_id = 1\n\n\
         [[hazard_sources]]\nid = \"HS\"\nname = \"Bench\"\nkind = \"tank_farm\"\nlevel = 1\n\n",
    );
    for i in 0..60 {
        s += &format!("[[hazard_sources.points]]\nid = \"F{i}\"\nkind = \"combustible_gas\"\ndevice = \"D\"\ntable = \"holding\"\naddress = {}\ndata_type = \"f32\"\nword_order = \"CDAB\"\nvalid_range = [0.0, 100.0]\n\n", i * 2);
    }
    for i in 0..60 {
        s += &format!("[[hazard_sources.points]]\nid = \"L{i}\"\nkind = \"level\"\ndevice = \"D\"\ntable = \"input\"\naddress = {i}\ndata_type = \"u16\"\nraw_range = [4000.0, 20000.0]\neng_range = [0.0, 100.0]\nloop_current = {{ fault_below_ma = 3.8, fault_above_ma = 20.5 }}\n\n");
    }
    s
}

fn bench(c: &mut Criterion) {
    let toml = site_toml();
    let site = load_site(SiteSource::Text {
        name: "bench",
        toml: &toml,
    })
    .expect("bench site");
    let dev = PlannedDevice::new(&site, 0, 0);
    let holding: Vec<u16> = (0..60)
        .flat_map(|i| {
            encode(
                Number::Float(f64::from(i) * 0.7),
                hazgate::model::DataType::F32,
                hazgate::model::WordOrder::CDAB,
            )
        })
        .collect();
    let input: Vec<u16> = (0..60).map(|i| 4000 + i * 200).collect();
    let answers: Vec<BlockData> = dev
        .blocks
        .iter()
        .map(|b| match b.table {
            hazgate::model::RegisterTable::Holding => BlockData::Words(holding.clone()),
            _ => BlockData::Words(input.clone()),
        })
        .collect();
    let points = dev.points.len() as u64;
    let mut group = c.benchmark_group("acquire");
    group.throughput(Throughput::Elements(points));
    group.bench_function("decode_and_quality_per_device_poll", |b| {
        let mut out = Vec::with_capacity(points as usize);
        b.iter(|| {
            out.clear();
            for (block, data) in dev.blocks.iter().zip(&answers) {
                decode_block(&site, block, black_box(data), Timestamp(0), &mut out);
            }
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
