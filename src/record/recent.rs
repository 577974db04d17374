//! What was worked out for the last two tags seen, found by pointer.

use std::sync::Arc;

/// What was worked out for the last two tags seen (a filter's Match
/// verdict, an output's routes, whether a tag may be a path), found by
/// pointer: records of one input share their tag's allocation,
/// `rewrite_tag` shares the last tag it built, and with `KEEP true` the
/// original's tag and the copies' alternate by generation. Holding the
/// `Arc` keeps its address from being reused.
pub struct RecentTags<V> {
    /// A value is read only under its tag; a slot without one holds a
    /// placeholder.
    slots: [(Option<Arc<str>>, V); 2],
}

impl<V: Default> Default for RecentTags<V> {
    fn default() -> Self {
        RecentTags { slots: [(None, V::default()), (None, V::default())] }
    }
}

impl<V> RecentTags<V> {
    /// Empty, with `placeholder` in the unused slots (never returned).
    pub fn new(placeholder: V) -> Self
    where
        V: Clone,
    {
        RecentTags { slots: [(None, placeholder.clone()), (None, placeholder)] }
    }

    /// The value for `tag`, worked out by `work` when it is not one of the
    /// last two.
    #[inline]
    pub fn get_or(&mut self, tag: &Arc<str>, work: impl FnOnce() -> V) -> &V {
        let hit = self.slots.iter().position(|(t, _)| t.as_ref().is_some_and(|t| Arc::ptr_eq(t, tag)));
        let i = match hit {
            Some(i) => i,
            None => {
                self.slots.swap(0, 1);
                self.slots[0] = (Some(tag.clone()), work());
                0
            }
        };
        &self.slots[i].1
    }

    /// Forget both (what they were worked out from changed).
    pub fn clear(&mut self) {
        for (tag, _) in &mut self.slots {
            *tag = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_tags_are_found_by_pointer_and_the_oldest_goes() {
        let mut r: RecentTags<usize> = RecentTags::default();
        let mut works = 0;
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let a_again: Arc<str> = "a".into();
        let mut get = |r: &mut RecentTags<usize>, t: &Arc<str>| {
            *r.get_or(t, || {
                works += 1;
                t.len() * 10 + works
            })
        };
        assert_eq!([get(&mut r, &a), get(&mut r, &b), get(&mut r, &a), get(&mut r, &b)], [11, 12, 11, 12]);
        // Equal text in another allocation is another tag; it evicts the
        // older one (a), and b is still known.
        assert_eq!(get(&mut r, &a_again), 13);
        assert_eq!(get(&mut r, &b), 12);
        assert_eq!(get(&mut r, &c), 14);
        assert_eq!(get(&mut r, &a_again), 13);
        assert_eq!(get(&mut r, &b), 15);
        r.clear();
        assert_eq!(get(&mut r, &c), 16);
    }
}
