//! The severity of an alert: a score from its [`Evidence`] that puts tunnels first.
//!
//! The count decides what alerts; the score only says how much the domain looks like a
//! tunnel, from the traits every tunnel tool shares because it carries data in the
//! names and works from one host or a few:
//!
//! | trait                          | points                                        |
//! |--------------------------------|-----------------------------------------------|
//! | names do not repeat            | 0 at half the queries a new name, 30 at 95 %  |
//! | few clients                    | 25 for one, 20 for two, 15 up to four, 5 up to eight, −10 up to 16, −40 past |
//! | long labels                    | 0 for a longest label of 10 bytes, 25 at 24   |
//! | data-carrying query types      | 20 × their share of the queries               |
//! | answers NXDOMAIN               | −20 × the NXDOMAIN share of the responses     |
//!
//! The sum, within 0 to 100, is the score; [`HIGH_SCORE`] and above is `high`. The
//! weights were chosen on the busy network of `synth::scenario::busy` (docs/ground-truth.md):
//! every alert of its loud tunnels scores 57 to 100, every alert of its busy benign
//! services 0 to 32.

use super::evidence::Evidence;

/// Score from which an alert is [`Severity::High`].
pub const HIGH_SCORE: u8 = 50;

/// How much an alert looks like a tunnel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Looks like a busy benign service.
    #[default]
    Low,
    /// Looks like a tunnel.
    High,
}

impl Severity {
    /// `"low"` or `"high"`, as every output writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::High => "high",
        }
    }
}

/// An alert's severity, its score and the traits behind it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// High from [`HIGH_SCORE`].
    pub severity: Severity,
    /// 0 to 100.
    pub score: u8,
    /// A few words for each trait that weighed, tunnel-like ones first.
    pub reasons: Vec<&'static str>,
}

impl Assessment {
    /// The assessment of `evidence`.
    pub fn of(evidence: &Evidence) -> Self {
        let mut reasons = Vec::new();
        let mut points = 0.0;

        points += 30.0 * ramp(evidence.names_per_query, 0.5, 0.95);
        points += match evidence.clients {
            0 | 1 => 25.0,
            2 => 20.0,
            3..=4 => 15.0,
            5..=8 => 5.0,
            9..=16 => -10.0,
            // A whole network asking is a service, whatever its names look like.
            _ => -40.0,
        };
        points += 25.0 * ramp(evidence.longest_label, 10.0, 24.0);
        points += 20.0 * evidence.data_qtype_share;
        points -= 20.0 * evidence.nxdomain_share;

        if evidence.names_per_query >= 0.9 {
            reasons.push("names do not repeat");
        }
        match evidence.clients {
            0 | 1 => reasons.push("one client"),
            2..=4 => reasons.push("few clients"),
            _ => {}
        }
        if evidence.longest_label >= 20.0 {
            reasons.push("long labels");
        }
        if evidence.data_qtype_share >= 0.5 {
            reasons.push("data query types");
        }
        if evidence.names_per_query < 0.5 {
            reasons.push("names repeat");
        }
        if evidence.clients > 16 {
            reasons.push("many clients");
        }
        if evidence.longest_label < 10.0 {
            reasons.push("short labels");
        }
        if evidence.nxdomain_share >= 0.5 {
            reasons.push("mostly NXDOMAIN");
        }

        let score = points.round().clamp(0.0, 100.0) as u8;
        Self {
            severity: if score >= HIGH_SCORE {
                Severity::High
            } else {
                Severity::Low
            },
            score,
            reasons,
        }
    }
}

/// 0 at `low` and under, 1 at `high` and over, straight between.
fn ramp(value: f64, low: f64, high: f64) -> f64 {
    ((value - low) / (high - low)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An iodine-like session: one client, a new name each query, long labels, NULL.
    fn tunnel() -> Evidence {
        Evidence {
            names_per_query: 1.0,
            clients: 1,
            top_client_share: 1.0,
            name_length: 100.0,
            labels: 2.0,
            longest_label: 57.0,
            data_qtype_share: 1.0,
            ..Evidence::default()
        }
    }

    /// A mail relay pair's DNSBL look-ups: reversed addresses, mostly NXDOMAIN.
    fn blocklist() -> Evidence {
        Evidence {
            names_per_query: 0.55,
            clients: 2,
            top_client_share: 0.5,
            name_length: 14.0,
            labels: 4.0,
            longest_label: 3.0,
            nxdomain_share: 0.75,
            ..Evidence::default()
        }
    }

    #[test]
    fn a_tunnel_scores_high_with_its_reasons() {
        let assessment = Assessment::of(&tunnel());
        assert_eq!(assessment.score, 100);
        assert_eq!(assessment.severity, Severity::High);
        assert_eq!(
            assessment.reasons,
            [
                "names do not repeat",
                "one client",
                "long labels",
                "data query types"
            ]
        );
    }

    #[test]
    fn a_blocklist_from_two_relays_scores_low() {
        let assessment = Assessment::of(&blocklist());
        // 30 × 0.11 + 20 + 0 + 0 − 15.
        assert_eq!(assessment.score, 8);
        assert_eq!(assessment.severity, Severity::Low);
        assert_eq!(
            assessment.reasons,
            ["few clients", "short labels", "mostly NXDOMAIN"]
        );
    }

    #[test]
    fn many_clients_outweigh_names_that_look_like_data() {
        // Hashed ad frames: new names with long labels, asked by the whole network.
        let ad_frames = Evidence {
            clients: 64,
            top_client_share: 0.01,
            data_qtype_share: 0.0,
            longest_label: 32.0,
            names_per_query: 0.9,
            ..tunnel()
        };
        let assessment = Assessment::of(&ad_frames);
        assert_eq!(assessment.severity, Severity::Low);
        assert!(assessment.reasons.contains(&"many clients"));
    }

    #[test]
    fn the_score_stays_within_0_and_100() {
        let worst = Evidence {
            names_per_query: 0.01,
            clients: 500,
            longest_label: 1.0,
            nxdomain_share: 1.0,
            ..Evidence::default()
        };
        assert_eq!(Assessment::of(&worst).score, 0);
        assert_eq!(Assessment::of(&tunnel()).score, 100);
    }

    #[test]
    fn the_threshold_between_low_and_high() {
        // A beacon from four hosts, its names asked again now and then: the figures
        // of the busy network's loudest Cobalt Strike campaign.
        let beacon = Evidence {
            names_per_query: 0.86,
            clients: 4,
            longest_label: 19.9,
            ..Evidence::default()
        };
        let assessment = Assessment::of(&beacon);
        assert_eq!(assessment.score, 57);
        assert_eq!(assessment.severity, Severity::High);
        let fewer_new = Evidence {
            names_per_query: 0.6,
            ..beacon
        };
        assert_eq!(Assessment::of(&fewer_new).severity, Severity::Low);
    }
}
