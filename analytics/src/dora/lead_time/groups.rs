//! Rows grouped by a service's number with a counting sort, each group in row order.

/// Rows grouped by a small key (a service's number), each group in row order: a counting
/// sort, which moves 4-byte indices, never the rows.
pub(super) struct Groups {
    starts: Vec<usize>,
    rows: Vec<u32>,
}

impl Groups {
    /// `keys[row]` is the row's group; [`Groups::NONE`] leaves the row out.
    pub(super) fn new(keys: &[u32], groups: usize) -> Self {
        let mut starts = vec![0usize; groups + 1];
        for key in keys.iter().filter(|k| **k != Self::NONE) {
            starts[*key as usize + 1] += 1;
        }
        for group in 0..groups {
            starts[group + 1] += starts[group];
        }
        let mut next = starts.clone();
        let mut rows = vec![0u32; starts[groups]];
        for (row, key) in keys.iter().enumerate() {
            if *key != Self::NONE {
                let slot = &mut next[*key as usize];
                rows[*slot] = row as u32;
                *slot += 1;
            }
        }
        Self { starts, rows }
    }

    pub(super) const NONE: u32 = u32::MAX;

    pub(super) fn group(&self, key: usize) -> &[u32] {
        &self.rows[self.starts[key]..self.starts[key + 1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_row_order_and_leave_out_rows_without_a_key() {
        let groups = Groups::new(&[1, Groups::NONE, 0, 1, 2], 3);
        assert_eq!(groups.group(0), [2]);
        assert_eq!(groups.group(1), [0, 3]);
        assert_eq!(groups.group(2), [4]);
    }
}
