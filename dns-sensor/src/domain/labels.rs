//! A canonical name's labels, from the right, with escaped dots kept inside labels.

/// Labels of a canonical name from the rightmost one, as the `publicsuffix` crate
/// wants them. A `.` is a separator unless escaped, i.e. preceded by an odd run of
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
        let mut i = self.end;
        while i > 0 {
            i -= 1;
            if self.name[i] == b'.' {
                let mut j = i;
                while j > 0 && self.name[j - 1] == b'\\' {
                    j -= 1;
                }
                if (i - j) % 2 == 0 {
                    self.end = i;
                    return Some(i + 1);
                }
                // Escaped: the backslashes belong to the label, skip them.
                i = j;
            }
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
