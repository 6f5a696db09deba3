//! The worker's connections: slots reused as clients come and go, each with
//! a generation, so a token (slot and generation, as the epoll data and in
//! a Python thread's completions) that outlives its connection names
//! nothing instead of the next client in that slot.

use super::pool::Token;

pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<usize>,
    live: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    /// How many entries are in use.
    pub fn len(&self) -> usize {
        self.live
    }

    /// One past the highest slot index (for walking every slot by index,
    /// while closing some).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Store `value` in a free slot; its index.
    pub fn insert(&mut self, value: T) -> usize {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                self.slots.len() - 1
            }
        };
        self.slots[index].1 = Some(value);
        self.live += 1;
        index
    }

    /// Take the entry out; the slot's generation moves on, so tokens for
    /// it go stale.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        let slot = self.slots.get_mut(index)?;
        let value = slot.1.take()?;
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(index);
        self.live -= 1;
        Some(value)
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.slots.get(index).and_then(|s| s.1.as_ref())
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.slots.get_mut(index).and_then(|s| s.1.as_mut())
    }

    /// The token naming the entry now in slot `index`.
    pub fn token(&self, index: usize) -> Token {
        let generation = self.slots.get(index).map_or(0, |s| s.0);
        ((generation as u64) << 32) | index as u64
    }

    /// The slot `tok` names, if that entry is still there.
    pub fn find(&self, tok: Token) -> Option<usize> {
        let index = (tok & 0xffff_ffff) as usize;
        let generation = (tok >> 32) as u32;
        match self.slots.get(index) {
            Some((g, Some(_))) if *g == generation => Some(index),
            _ => None,
        }
    }

    /// The entries in use, with their slot indexes.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.1.as_ref().map(|v| (i, v)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(|s| s.1.as_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tokens_name_nothing() {
        let mut s = Slab::new();
        let a = s.insert("a");
        let tok = s.token(a);
        assert_eq!(s.find(tok), Some(a));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.find(tok), None);
        // The slot is reused, under a new generation.
        let b = s.insert("b");
        assert_eq!(b, a);
        assert_eq!(s.find(tok), None);
        assert_eq!(s.find(s.token(b)), Some(b));
        assert_eq!(s.len(), 1);
        assert_eq!(s.remove(a), Some("b"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 0);
    }
}
