//! Checks across the points of a device: overlapping registers, fault points, what
//! one request can read.

use crate::model::{file::SiteFile, problems::Problems, site::*};

/// Each device's points, in site order.
pub(super) fn attach_points_to_devices(site: &mut Site) {
    for i in 0..site.points.len() {
        let (c, d) = site.points[i].device_at();
        site.channels[c].devices[d]
            .points
            .push(PointIndex(i as u32));
    }
}

/// The file path of a point, from its dense index.
fn point_path(file: &SiteFile, index: PointIndex) -> String {
    let mut i = index.get();
    for (si, s) in file.hazard_sources.iter().enumerate() {
        if i < s.points.len() {
            return format!("hazard_sources[{si}].points[{i}]");
        }
        i -= s.points.len();
    }
    format!("points[{}]", index.get())
}

pub(super) fn check_overlaps_and_faults(file: &SiteFile, site: &Site, errors: &mut Problems) {
    for (_, device) in site.devices() {
        let mut spans: Vec<&Point> = device.points.iter().map(|&i| site.point(i)).collect();
        spans.sort_by_key(|p| (p.register.table, p.register.address));
        for pair in spans.windows(2) {
            let (a, b) = (&pair[0].register, &pair[1].register);
            if a.table != b.table {
                continue;
            }
            let a_end = u32::from(a.address) + u32::from(a.width());
            if u32::from(b.address) < a_end {
                // Bools on different bits of one register legitimately share it.
                let shared_bits = a.data_type == DataType::Bool
                    && b.data_type == DataType::Bool
                    && !a.table.is_bit_table()
                    && a.address == b.address
                    && a.bit != b.bit;
                if !shared_bits {
                    errors.push(
                        format!("{}.address", point_path(file, pair[1].index)),
                        format!("overlaps point {}", pair[0].id),
                    );
                }
            }
        }
    }
    for p in &site.points {
        if let Some(f) = p.fault_point {
            let fp = site.point(f);
            let path = format!("{}.fault_point", point_path(file, p.index));
            if fp.device != p.device {
                errors.push(
                    path,
                    format!(
                        "`{}` is on device {}, not {}",
                        fp.id, fp.device_id, p.device_id
                    ),
                );
            } else if !fp.is_discrete() {
                errors.push(path, format!("`{}` is not a discrete point", fp.id));
            } else if f == p.index {
                errors.push(path, "a point cannot be its own fault point");
            }
        }
    }
}

pub(super) fn check_block_fits(file: &SiteFile, site: &Site, errors: &mut Problems) {
    for (_, device) in site.devices() {
        for &i in &device.points {
            let p = site.point(i);
            let max = if p.register.table.is_bit_table() {
                device.limits.max_bits
            } else {
                device.limits.max_registers
            };
            if p.register.width() > max {
                errors.push(
                    format!("{}.data_type", point_path(file, i)),
                    format!(
                        "needs {} registers but device {} reads at most {max} per request",
                        p.register.width(),
                        device.id
                    ),
                );
            }
        }
    }
}
