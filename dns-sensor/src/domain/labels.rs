//! A canonical name's labels, from the right, with escaped dots kept inside labels:
//! [`RevLabels`] finds them one at a time, [`LabelStarts`] remembers them for the
//! classifier's several looks.

/// Label starts [`LabelStarts`] remembers; the classifier rarely looks further (the
/// deepest rules of the list have six labels).
const REMEMBERED: usize = 8;

/// Where each label of a name starts, from the rightmost label leftwards, found as they
/// are asked for and remembered, so that the whitelist check, the suffix walk and the
/// registered domain share one scan of the name's tail.
pub(super) struct LabelStarts<'n> {
    /// Every label start, left to right, when the caller knew them.
    known: Option<&'n [u8]>,
    labels: RevLabels<'n>,
    starts: [u16; REMEMBERED],
    found: usize,
    /// Every label has been found.
    done: bool,
}

impl<'n> LabelStarts<'n> {
    /// The labels of `name`, none found yet.
    #[inline]
    pub(super) fn new(name: &'n [u8]) -> Self {
        Self {
            known: None,
            labels: RevLabels::new(name),
            starts: [0; REMEMBERED],
            found: 0,
            done: name.is_empty(),
        }
    }

    /// The labels of `name` that start at `known` (left to right, as the DNS parser
    /// found them): nothing to scan.
    #[inline]
    pub(super) fn known(name: &'n [u8], known: &'n [u8]) -> Self {
        Self {
            known: Some(known),
            ..Self::new(name)
        }
    }

    /// The start of the `i`th label from the right (0: the last label), if the name has
    /// that many.
    #[inline(always)]
    pub(super) fn get(&mut self, i: usize) -> Option<usize> {
        if let Some(known) = self.known {
            let at = known.len().checked_sub(1 + i)?;
            return known.get(at).map(|&s| usize::from(s));
        }
        self.find(i)
    }

    /// [`get`](Self::get) when the starts are not known: scan as far as needed.
    #[inline(never)]
    fn find(&mut self, i: usize) -> Option<usize> {
        if i >= REMEMBERED {
            // Past what is remembered: walk again from the right (rare and short).
            let mut again = RevLabels::new(self.labels.name);
            let mut start = None;
            for _ in 0..=i {
                start = Some(again.next_start()?);
            }
            return start;
        }
        while self.found <= i {
            if self.done {
                return None;
            }
            match self.labels.next_start() {
                Some(start) => {
                    // A canonical name is at most 512 bytes; longer input is junk the
                    // classifier still must not panic on: it stops being split.
                    let Ok(start) = u16::try_from(start) else {
                        self.done = true;
                        return None;
                    };
                    self.starts[self.found] = start;
                    self.found += 1;
                }
                None => {
                    self.done = true;
                    return None;
                }
            }
        }
        Some(usize::from(self.starts[i]))
    }
}

/// Labels of a canonical name from the rightmost one. A `.` is a separator unless escaped, i.e. preceded by an odd run of
/// `\`; the scan skips each run of backslashes once, so a name is walked in linear
/// time.
pub(super) struct RevLabels<'n> {
    name: &'n [u8],
    /// End (exclusive) of the next label to hand out.
    end: usize,
    done: bool,
}

impl<'n> RevLabels<'n> {
    pub(super) fn new(name: &'n [u8]) -> Self {
        Self {
            name,
            end: name.len(),
            done: false,
        }
    }

    /// Start offset of the next label (from the right), in `name`.
    pub(super) fn next_start(&mut self) -> Option<usize> {
        if self.done {
            return None;
        }
        let mut before = self.end.min(self.name.len());
        // A search the compiler turns into a tight loop: no bounds check a byte.
        while let Some(i) = self.name[..before].iter().rposition(|&b| b == b'.') {
            let backslashes = self.name[..i]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            if backslashes % 2 == 0 {
                self.end = i;
                return Some(i + 1);
            }
            // Escaped: the dot and its backslashes belong to the label.
            before = i - backslashes;
        }
        self.done = true;
        Some(0)
    }
}

impl<'n> Iterator for RevLabels<'n> {
    type Item = &'n [u8];

    fn next(&mut self) -> Option<&'n [u8]> {
        let end = self.end;
        let start = self.next_start()?;
        self.name.get(start..end)
    }
}
