//! ClickHouse's HTTP interface, through ureq: a statement is the `query` parameter, an
//! insert's rows the request body. Nothing is written into SQL text here; callers pass
//! statements whose only variable parts are numbers and the checked [`Database`].
//!
//! [`Database`]: super::Database

use std::time::Duration;

/// How long one request may take in all: a slot's insert is a few megabytes at most,
/// and the fleet query reads a window.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of a response read: a fleet query returns the domains over the threshold
/// only (at most a few thousand rows, each with its clients and samples).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// A request ClickHouse did not carry out.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    /// No answer: refused, timed out, the connection dropped.
    #[error("{url}: {source}")]
    Unreachable {
        /// The server.
        url: String,
        /// Why.
        source: Box<ureq::Error>,
    },
    /// An answer with an error: ClickHouse's own message, escaped.
    #[error("{url}: HTTP {status}: {message}")]
    Refused {
        /// The server.
        url: String,
        /// The HTTP status (400 syntax, 401 authentication, 404 unknown name, 500 most
        /// others).
        status: u16,
        /// ClickHouse's message, its first line, escaped.
        message: String,
    },
    /// An answer that is not what the query asks for.
    #[error("{url}: unexpected answer: {source}")]
    BadAnswer {
        /// The server.
        url: String,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
}

/// A ClickHouse server.
pub struct ClickHouse {
    url: String,
    agent: ureq::Agent,
    /// `Basic ...` (RFC 7617), when a user or a password is set: ClickHouse 18.16
    /// reads credentials from HTTP Basic authentication or the URL, and a URL ends up
    /// in proxies' logs.
    basic_auth: Option<String>,
}

impl ClickHouse {
    /// A client of the server at `url` (`http://host:8123`), as `user`.
    pub fn new(url: &str, user: Option<String>, password: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        let basic_auth = (user.is_some() || password.is_some()).then(|| {
            use base64::Engine;
            let pair = format!(
                "{}:{}",
                user.as_deref().unwrap_or("default"),
                password.as_deref().unwrap_or_default()
            );
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Self {
            url: url.trim_end_matches('/').to_string(),
            agent,
            basic_auth,
        }
    }

    /// The server's address, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `statement` (DDL), ignoring what it returns.
    pub fn execute(&self, statement: &str) -> Result<(), ClickHouseError> {
        self.post(statement, "").map(drop)
    }

    /// Inserts `body`, rows in `format` (`JSONEachRow`), into `table`. Into a
    /// `Distributed` table the insert returns once every shard has its rows
    /// (`insert_distributed_sync`), so a slot counts as shipped only when it is stored
    /// where the fleet query reads it, as on one server.
    pub fn insert(&self, table: &str, format: &str, body: &str) -> Result<(), ClickHouseError> {
        self.post_with(
            &format!("INSERT INTO {table} FORMAT {format}"),
            &[("insert_distributed_sync", "1")],
            body,
        )
        .map(drop)
    }

    /// Runs `query` (a SELECT without FORMAT) and parses its rows, one JSON object a
    /// row, 64-bit integers as numbers.
    pub fn select<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
    ) -> Result<Vec<T>, ClickHouseError> {
        let text = self.post(&format!("{query} FORMAT JSONEachRow"), "")?;
        text.lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|source| ClickHouseError::BadAnswer {
                    url: self.url.clone(),
                    source,
                })
            })
            .collect()
    }

    /// Whether the server answers `/ping`.
    pub fn ping(&self) -> Result<(), ClickHouseError> {
        let response = self
            .agent
            .get(format!("{}/ping", self.url))
            .call()
            .map_err(|e| self.unreachable(e))?;
        self.body_of(response).map(drop)
    }

    fn post(&self, query: &str, body: &str) -> Result<String, ClickHouseError> {
        self.post_with(query, &[], body)
    }

    /// Posts `query` with `settings` (ClickHouse settings, as URL parameters).
    fn post_with(
        &self,
        query: &str,
        settings: &[(&str, &str)],
        body: &str,
    ) -> Result<String, ClickHouseError> {
        let mut request = self
            .agent
            .post(format!("{}/", self.url))
            .query("query", query)
            // 18.16 quotes 64-bit integers in JSON unless told not to.
            .query("output_format_json_quote_64bit_integers", "0");
        for (name, value) in settings {
            request = request.query(*name, *value);
        }
        if let Some(credentials) = &self.basic_auth {
            request = request.header("Authorization", credentials);
        }
        let response = request
            .send(body.as_bytes())
            .map_err(|e| self.unreachable(e))?;
        self.body_of(response)
    }

    fn body_of(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<String, ClickHouseError> {
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        // An error partway through a SELECT comes with status 200 and the error text
        // after the rows sent (ClickHouse 18.16): a line that is not a row. A row's
        // names may hold the same words; a row is a JSON object.
        let late_error = |line: &&str| !line.starts_with('{') && line.contains("DB::Exception");
        let message = match status {
            200 => text.lines().find(late_error),
            _ => Some(text.lines().next().unwrap_or_default()),
        };
        if let Some(message) = message {
            return Err(ClickHouseError::Refused {
                url: self.url.clone(),
                status,
                message: printable(message.trim()),
            });
        }
        Ok(text)
    }

    fn unreachable(&self, e: ureq::Error) -> ClickHouseError {
        ClickHouseError::Unreachable {
            url: self.url.clone(),
            source: Box::new(e),
        }
    }
}

/// `text` with every character but printable ASCII and the space as `?`: a server's
/// message may quote the statement, and with it whatever it held.
fn printable(text: &str) -> String {
    text.chars()
        .take(500)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}
