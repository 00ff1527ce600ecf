//! R10's median of lead time samples.

/// R10's median as polars computes it (linear interpolation between the two middle values).
pub(super) fn median(values: &mut [f64]) -> Option<f64> {
    let count = values.len();
    if count == 0 {
        return None;
    }
    let middle = (count - 1) / 2;
    let (_, lower, upper) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let lower = *lower;
    if count % 2 == 1 {
        return Some(lower);
    }
    let upper = upper
        .iter()
        .copied()
        .min_by(f64::total_cmp)
        .unwrap_or(lower);
    Some(if lower == upper {
        lower
    } else {
        0.5 * (upper - lower) + lower
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interpolates_between_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [1.0, 1.0]), Some(1.0));
    }
}
