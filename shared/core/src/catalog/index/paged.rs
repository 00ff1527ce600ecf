//! A vector in fixed pages: indexing as cheap as a `Vec`'s, but growing a page at a time, so
//! that it never holds more than one page of spare capacity (a `Vec` that doubles holds a
//! quarter spare on average, and copies everything each time it grows).

/// Elements per page.
const PAGE: usize = 4096;

pub(super) struct Paged<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Self {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Paged<T> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn push(&mut self, value: T) {
        if self.len.is_multiple_of(PAGE) {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        if let Some(page) = self.pages.last_mut() {
            page.push(value);
        }
        self.len += 1;
    }

    pub(super) fn get(&self, i: usize) -> Option<&T> {
        self.pages.get(i / PAGE).and_then(|p| p.get(i % PAGE))
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.pages
            .get_mut(i / PAGE)
            .and_then(|p| p.get_mut(i % PAGE))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.pages.iter().flatten()
    }
}

impl<T> std::ops::Index<usize> for Paged<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.pages[i / PAGE][i % PAGE]
    }
}

impl<T> std::ops::IndexMut<usize> for Paged<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.pages[i / PAGE][i % PAGE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_index_like_a_vec() {
        let mut v = Paged::default();
        for i in 0..(PAGE * 2 + 3) {
            v.push(i);
        }
        assert_eq!(v.len(), PAGE * 2 + 3);
        assert_eq!(v[PAGE + 1], PAGE + 1);
        assert_eq!(v.get(PAGE * 2 + 3), None);
        v[7] = 70;
        assert_eq!(v.get_mut(7).copied(), Some(70));
        assert_eq!(v.iter().count(), PAGE * 2 + 3);
        assert_eq!(v.pages.iter().map(Vec::capacity).sum::<usize>(), PAGE * 3);
    }
}
