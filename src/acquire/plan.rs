//! Block-read planning: the fewest requests that cover a device's points.
//!
//! Every request costs a round trip (and on RS-485, line time every other device
//! waits for), so points are coalesced per function code into blocks of at most
//! `max_registers` / `max_bits`, spanning gaps of at most `max_gap` unused addresses.
//! Greedy left-to-right merging over sorted addresses is optimal here: each block
//! starts at the first uncovered point and extends as far as the limits allow.

use crate::model::{BlockLimits, PointIndex, RegisterSpec, RegisterTable};

/// One read request and the points its answer feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub table: RegisterTable,
    pub start: u16,
    pub count: u16,
    pub points: Vec<PointIndex>,
}

impl Block {
    /// The request as a log or a commissioning engineer names it, e.g.
    /// `fc 3 holding address 100 count 10`.
    pub fn describe(&self) -> String {
        format!(
            "fc {} {} address {} count {}",
            self.table.function_code(),
            self.table.as_str(),
            self.start,
            self.count
        )
    }

    /// One past the last address read.
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

/// Plans the blocks for one device. Points wider than the limit (rejected by
/// `hazgate check`) still get a block of their own, so nothing is silently dropped.
pub fn plan_blocks(points: &[(PointIndex, RegisterSpec)], limits: BlockLimits) -> Vec<Block> {
    let mut sorted: Vec<&(PointIndex, RegisterSpec)> = points.iter().collect();
    sorted.sort_by_key(|(i, s)| (s.table, s.address, *i));

    let mut blocks: Vec<Block> = Vec::new();
    for (index, spec) in sorted {
        let start = u32::from(spec.address);
        let end = start + u32::from(spec.width());
        let max = u32::from(if spec.table.is_bit_table() {
            limits.max_bits
        } else {
            limits.max_registers
        });
        if let Some(b) = blocks.last_mut() {
            let fits = b.table == spec.table
                && start <= b.end() + u32::from(limits.max_gap)
                && end.max(b.end()) - u32::from(b.start) <= max;
            if fits {
                let new_end = end.max(b.end());
                b.count = (new_end - u32::from(b.start)) as u16;
                b.points.push(*index);
                continue;
            }
        }
        blocks.push(Block {
            table: spec.table,
            start: spec.address,
            count: (end - start) as u16,
            points: vec![*index],
        });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DataType, WordOrder};

    fn spec(table: RegisterTable, address: u16, data_type: DataType) -> RegisterSpec {
        RegisterSpec {
            table,
            address,
            data_type,
            word_order: WordOrder::ABCD,
            bit: None,
        }
    }

    fn limits(max_registers: u16, max_gap: u16) -> BlockLimits {
        BlockLimits {
            max_registers,
            max_bits: 2000,
            max_gap,
        }
    }

    #[test]
    fn contiguous_points_make_one_block() {
        let pts: Vec<_> = (0..10)
            .map(|i| {
                (
                    PointIndex(i),
                    spec(RegisterTable::Holding, i as u16 * 2, DataType::F32),
                )
            })
            .collect();
        let b = plan_blocks(&pts, limits(125, 0));
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].start, b[0].count), (0, 20));
    }

    #[test]
    fn gap_limit_splits() {
        let pts = vec![
            (
                PointIndex(0),
                spec(RegisterTable::Holding, 0, DataType::U16),
            ),
            (
                PointIndex(1),
                spec(RegisterTable::Holding, 5, DataType::U16),
            ),
            (
                PointIndex(2),
                spec(RegisterTable::Holding, 30, DataType::U16),
            ),
        ];
        let b = plan_blocks(&pts, limits(125, 4));
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].start, b[0].count), (0, 6));
        assert_eq!((b[1].start, b[1].count), (30, 1));
        assert_eq!(plan_blocks(&pts, limits(125, 24)).len(), 1);
    }

    #[test]
    fn size_limit_splits_and_tables_never_mix() {
        let mut pts: Vec<_> = (0..130)
            .map(|i| {
                (
                    PointIndex(i),
                    spec(RegisterTable::Input, i as u16, DataType::U16),
                )
            })
            .collect();
        pts.push((
            PointIndex(200),
            spec(RegisterTable::Coil, 0, DataType::Bool),
        ));
        pts.push((
            PointIndex(201),
            spec(RegisterTable::DiscreteInput, 0, DataType::Bool),
        ));
        let b = plan_blocks(&pts, limits(125, 0));
        assert_eq!(b.len(), 4);
        assert_eq!(b.iter().map(|b| b.count).max(), Some(125));
    }

    #[test]
    fn a_wide_value_never_straddles_a_block_boundary() {
        // 62 floats = 124 registers; the 63rd would need registers 124..126.
        let pts: Vec<_> = (0..63)
            .map(|i| {
                (
                    PointIndex(i),
                    spec(RegisterTable::Holding, i as u16 * 2, DataType::F32),
                )
            })
            .collect();
        let b = plan_blocks(&pts, limits(125, 0));
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].count, b[1].start, b[1].count), (124, 124, 2));
    }
}
