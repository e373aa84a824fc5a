//! Re-alert suppression: which of an evaluation's alerts are reported, from when each
//! domain was last reported and whether it was queried since. The sensor's window and
//! the fleet's rule both decide with it, so that a domain is held back alike in both.

use std::collections::HashMap;

use super::{Alert, RuleSettings};
use crate::Nanos;

/// When each recently reported domain was last reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reports {
    last: HashMap<Box<[u8]>, Nanos, foldhash::fast::RandomState>,
}

impl Reports {
    /// None reported yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Of `alerts` (largest first), the first `max_domains` that were not reported less
    /// than `realert` ago, nor since then without a query (`queried_since(domain, t)`:
    /// whether it was queried in a slot starting at or after `t`); remembers them as
    /// reported at `at`. Domains already reported are left out before the cut, so they
    /// do not crowd out new ones.
    pub fn select(
        &mut self,
        alerts: Vec<Alert>,
        at: Nanos,
        rule: &RuleSettings,
        queried_since: impl Fn(&[u8], Nanos) -> bool,
    ) -> Vec<Alert> {
        // An entry matters while it suppresses (younger than `realert`) or while traffic
        // from before it can still be in the window; past both, forgetting it changes
        // nothing, and the table holds only domains reported that recently.
        let realert = rule.realert;
        let remembered = realert.max(rule.window);
        self.last
            .retain(|_, last| at.saturating_sub(*last) < remembered);
        let mut reported = Vec::with_capacity(alerts.len().min(rule.max_domains));
        for alert in alerts {
            if reported.len() >= rule.max_domains {
                break;
            }
            if let Some(&last) = self.last.get(&alert.domain) {
                // A tunnel that stopped stays over the threshold until its traffic leaves
                // the window: report it again only if it went on after the last report.
                if at.saturating_sub(last) < realert || !queried_since(&alert.domain, last) {
                    continue;
                }
            }
            if realert > 0 {
                self.last.insert(alert.domain.clone(), at);
            }
            reported.push(alert);
        }
        reported
    }

    /// Remembers `domain` as reported at `at` (a restored state); false if it was
    /// already there.
    pub fn insert(&mut self, domain: Box<[u8]>, at: Nanos) -> bool {
        self.last.insert(domain, at).is_none()
    }

    /// Each remembered domain and when it was last reported, in no order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], Nanos)> {
        self.last.iter().map(|(domain, &at)| (&domain[..], at))
    }

    /// Domains remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NANOS_PER_SEC;

    const MIN: Nanos = 60 * NANOS_PER_SEC;

    fn alert(domain: &str, names: u64) -> Alert {
        Alert {
            at: 0,
            domain: domain.as_bytes().into(),
            total_requests: names,
            unique_hostnames: names,
            estimated: false,
            threshold: 200,
            total_bytes_in: 0,
            total_bytes_out: 0,
            window_start: 0,
            window_end: 0,
            top_clients: Vec::new(),
            sample_names: Vec::new(),
            qtypes: Vec::new(),
            evidence: Default::default(),
            assessment: Default::default(),
        }
    }

    fn domains(alerts: &[Alert]) -> Vec<&[u8]> {
        alerts.iter().map(|a| &a.domain[..]).collect()
    }

    #[test]
    fn a_reported_domain_waits_for_realert_and_a_query_since() {
        let rule = RuleSettings::default();
        let mut reports = Reports::new();
        let always = |_: &[u8], _: Nanos| true;
        let at = 1_000 * MIN;
        let first = reports.select(vec![alert("t.org", 300)], at, &rule, always);
        assert_eq!(domains(&first), [b"t.org"]);
        let soon = reports.select(vec![alert("t.org", 300)], at + 15 * MIN, &rule, always);
        assert!(soon.is_empty(), "held back within the hour");
        let stopped = |_: &[u8], _: Nanos| false;
        let later = reports.select(vec![alert("t.org", 300)], at + 60 * MIN, &rule, stopped);
        assert!(later.is_empty(), "no query since the report");
        let went_on = reports.select(vec![alert("t.org", 300)], at + 60 * MIN, &rule, always);
        assert_eq!(domains(&went_on), [b"t.org"]);
    }

    #[test]
    fn held_back_domains_do_not_crowd_out_new_ones_and_zero_remembers_none() {
        let rule = RuleSettings {
            max_domains: 1,
            ..RuleSettings::default()
        };
        let mut reports = Reports::new();
        let always = |_: &[u8], _: Nanos| true;
        reports.select(vec![alert("big.org", 900)], 0, &rule, always);
        let next = vec![alert("big.org", 900), alert("new.org", 300)];
        assert_eq!(
            domains(&reports.select(next, MIN, &rule, always)),
            [b"new.org"]
        );
        assert_eq!(reports.len(), 2);

        let every_time = RuleSettings {
            realert: 0,
            ..RuleSettings::default()
        };
        let mut none = Reports::new();
        for at in [0, MIN] {
            let alerts = none.select(vec![alert("t.org", 300)], at, &every_time, always);
            assert_eq!(alerts.len(), 1);
        }
        assert!(none.is_empty());
    }

    #[test]
    fn entries_are_forgotten_once_they_neither_suppress_nor_reach_the_window() {
        let rule = RuleSettings::default();
        let mut reports = Reports::new();
        let always = |_: &[u8], _: Nanos| true;
        reports.select(vec![alert("t.org", 300)], 0, &rule, always);
        reports.select(Vec::new(), rule.window - 1, &rule, always);
        assert_eq!(reports.len(), 1);
        reports.select(Vec::new(), rule.window, &rule, always);
        assert!(reports.is_empty());
    }
}
