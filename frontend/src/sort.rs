//! Sorting short lists without `slice::sort*`.
//!
//! The standard library's stable sort is several KB of wasm per element
//! type (and per comparator); `BTreeMap`/`BTreeSet` built with `collect`
//! sort their items first, too. The SPA's lists are short (a workflow's
//! nodes, a run's frames, a form's fields), so one small insertion sort
//! per use does the same job for a fraction of the size. Collections are
//! built with `insert` in loops for the same reason.

/// Sorts `items` stably by `key` (insertion sort: for lists of at most a
/// few hundred items).
pub fn by_key<T, K: Ord>(items: &mut [T], mut key: impl FnMut(&T) -> K) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && key(&items[j - 1]) > key(&items[j]) {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_by_key() {
        let mut items = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        by_key(&mut items, |i| i.0);
        assert_eq!(
            items,
            vec![(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]
        );
        let mut empty: Vec<u8> = Vec::new();
        by_key(&mut empty, |i| *i);
        assert!(empty.is_empty());
    }

    #[test]
    fn matches_the_standard_sort_on_a_long_list() {
        let mut items: Vec<u32> = (0..300).map(|i| (i * 7919) % 257).collect();
        let mut expected = items.clone();
        expected.sort_unstable();
        by_key(&mut items, |i| *i);
        assert_eq!(items, expected);
    }
}
