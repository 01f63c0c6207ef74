//! Start-up indexes over a rank list, so that long lists of prefix routes are not scanned
//! one by one.
//!
//! A [`RankIndex`] splits an ascending rank list into the sub-routes without a literal path
//! prefix (scanned as before) and a radix tree over the literal prefixes: the prefixes of
//! `PathMatch::Prefix` sub-routes, and for regex paths the literal prefix every match of
//! the regex starts with (`/users/(\d+)` → `/users/`), found by `regex-syntax`. Walking the tree
//! with the request path visits exactly the nodes whose prefix starts the path; each node
//! holds the ascending ranks of the sub-routes with that prefix. The caller scans every
//! list it is given and keeps the lowest matching rank, so the result is the same as a scan
//! of the whole list.

/// Lists with fewer prefix sub-routes than this are scanned linearly: a short scan beats
/// walking a tree.
const MIN_INDEXED: usize = 16;

/// One rank list, as [`super::Router::find`] reads it.
#[derive(Debug)]
pub(super) enum RankIndex {
    /// Scan the list as written.
    Scan(&'static [u32]),
    /// Ranks of sub-routes without a literal prefix, plus a tree over the literal prefixes.
    Tree {
        /// Ascending ranks that are always candidates (no literal prefix known).
        unindexed: Box<[u32]>,
        /// Keyed sub-routes by prefix.
        tree: PrefixTree,
    },
}

impl RankIndex {
    /// Indexes `list` (ascending ranks, all in range of `keys`) when it is long enough.
    /// `keys[rank]` holds the literal prefixes every path matching sub-route `rank` starts
    /// with (one per path of the sub-route), or `None` when there is no such prefix.
    pub(super) fn new(list: &'static [u32], keys: &[Option<Vec<Box<[u8]>>>]) -> RankIndex {
        let keys_of = |r: u32| keys.get(r as usize).and_then(Option::as_ref);
        let n_keyed = list.iter().filter(|&&r| keys_of(r).is_some()).count();
        if n_keyed < MIN_INDEXED {
            return RankIndex::Scan(list);
        }
        let mut unindexed = Vec::new();
        let mut tree = PrefixTree::default();
        for &rank in list {
            match keys_of(rank) {
                Some(prefixes) => {
                    for p in prefixes {
                        tree.insert(p, rank);
                    }
                }
                None => unindexed.push(rank),
            }
        }
        RankIndex::Tree {
            unindexed: unindexed.into_boxed_slice(),
            tree,
        }
    }

    /// Calls `f` with ascending rank lists that together hold every rank of this list that
    /// can match `path` (and maybe others). A rank may be given more than once.
    #[inline]
    pub(super) fn for_each_candidate(&self, path: &str, f: &mut impl FnMut(&[u32])) {
        match self {
            RankIndex::Scan(list) => f(list),
            RankIndex::Tree { unindexed, tree } => {
                if !unindexed.is_empty() {
                    f(unindexed);
                }
                tree.walk(path.as_bytes(), f);
            }
        }
    }
}

/// A radix tree over byte strings; node 0 is the root (the empty prefix).
#[derive(Debug)]
pub(super) struct PrefixTree {
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// The bytes on the edge from the parent (empty for the root).
    label: Box<[u8]>,
    /// First byte of each child's label, sorted; parallel to `children`.
    first: Vec<u8>,
    /// Child node indices.
    children: Vec<u32>,
    /// Ascending ranks whose prefix ends exactly here.
    ranks: Vec<u32>,
}

impl Default for PrefixTree {
    fn default() -> Self {
        PrefixTree {
            nodes: vec![Node::default()],
        }
    }
}

impl PrefixTree {
    /// Adds `rank` under `key`. Ranks must be inserted in ascending order.
    fn insert(&mut self, mut key: &[u8], rank: u32) {
        let mut n = 0usize;
        loop {
            let Some(&b) = key.first() else {
                let ranks = &mut self.nodes[n].ranks;
                if ranks.last() != Some(&rank) {
                    ranks.push(rank);
                }
                return;
            };
            let new_index = self.nodes.len() as u32;
            match self.nodes[n].first.binary_search(&b) {
                Err(pos) => {
                    self.nodes.push(Node {
                        label: key.into(),
                        ranks: vec![rank],
                        ..Node::default()
                    });
                    let node = &mut self.nodes[n];
                    node.first.insert(pos, b);
                    node.children.insert(pos, new_index);
                    return;
                }
                Ok(pos) => {
                    let c = self.nodes[n].children[pos] as usize;
                    let label = &self.nodes[c].label;
                    let common = label.iter().zip(key).take_while(|(a, b)| a == b).count();
                    if common < label.len() {
                        // Split the edge: n -> mid (label[..common]) -> c (label[common..]).
                        let head: Box<[u8]> = label[..common].into();
                        let tail: Box<[u8]> = label[common..].into();
                        let tail_first = tail[0];
                        self.nodes[c].label = tail;
                        self.nodes.push(Node {
                            label: head,
                            first: vec![tail_first],
                            children: vec![c as u32],
                            ranks: Vec::new(),
                        });
                        self.nodes[n].children[pos] = new_index;
                        n = new_index as usize;
                    } else {
                        n = c;
                    }
                    key = &key[common..];
                }
            }
        }
    }

    /// Calls `f` with the ranks of every node whose prefix starts `path`, shortest first.
    #[inline]
    fn walk(&self, mut path: &[u8], f: &mut impl FnMut(&[u32])) {
        let mut node = match self.nodes.first() {
            Some(root) => root,
            None => return,
        };
        loop {
            if !node.ranks.is_empty() {
                f(&node.ranks);
            }
            let Some(&b) = path.first() else { return };
            // Fan-out is small except near the root: scan short lists, bisect long ones.
            let found = if node.first.len() <= 16 {
                node.first.iter().position(|&x| x == b)
            } else {
                node.first.binary_search(&b).ok()
            };
            let Some(pos) = found else { return };
            let Some(child) = node
                .children
                .get(pos)
                .and_then(|&c| self.nodes.get(c as usize))
            else {
                return;
            };
            // The first byte matched already; single-byte labels (common under a wide fan-out)
            // need no further compare.
            let len = child.label.len();
            if len > 1 && path.get(1..len) != child.label.get(1..) {
                return;
            }
            path = path.get(len..).unwrap_or_default();
            node = child;
        }
    }
}
