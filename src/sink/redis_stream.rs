//! The Redis Streams sink (`[redis]`): each event's JSON message (see
//! `bus`) as one entry of a stream (`XADD <stream> MAXLEN ~ <n> * id <id>
//! event <json>`), through the durable spool: the spool entry goes once
//! Redis returned the entry's id. Connections (the `redis` crate's
//! synchronous client) are kept for reuse by the sender threads; one that
//! failed is dropped and the next delivery opens a new one.

use std::sync::Mutex;
use std::time::Duration;

use super::bus::{self, FailureLog, MessageOptions, Shrinker};
use super::spool::SpoolRecord;
use super::{Delivery, Sink, SinkError};
use crate::config::RedisConfig;
use crate::sync::lock;

pub struct RedisSink {
    client: redis::Client,
    /// Idle connections, taken by one delivery at a time.
    idle: Mutex<Vec<redis::Connection>>,
    stream: String,
    maxlen: u64,
    include_frame: bool,
    node: String,
    shrinker: Mutex<Shrinker>,
    timeout: Duration,
    failures: FailureLog,
}

impl RedisSink {
    /// Errors name the key; the password never appears in them.
    pub fn new(cfg: &RedisConfig) -> Result<Self, SinkError> {
        use redis::IntoConnectionInfo;
        let info = cfg.url.as_str().into_connection_info().map_err(|e| SinkError::caused("redis.url", e))?;
        let mut settings = info.redis_settings().clone();
        if let Some(u) = &cfg.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &cfg.password {
            settings = settings.set_password(p.expose());
        }
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(|e| SinkError::caused("redis.url", e))?;
        Ok(RedisSink {
            client,
            idle: Mutex::new(Vec::new()),
            stream: cfg.stream.clone(),
            maxlen: cfg.maxlen,
            include_frame: cfg.include_frame,
            node: bus::node_name(&cfg.node),
            shrinker: Mutex::new(Shrinker::default()),
            timeout: Duration::from_millis(cfg.timeout_ms),
            failures: FailureLog::default(),
        })
    }

    fn connection(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        if let Some(c) = lock(&self.idle).pop() {
            return Ok(c);
        }
        let c = self.client.get_connection_with_timeout(timeout)?;
        Ok(c)
    }

    fn failed(&self, e: &redis::RedisError) -> Delivery {
        let why = if e.kind() == redis::ErrorKind::AuthenticationFailed {
            format!("Redis refused the credentials ({e}): check redis.username and redis.password")
        } else {
            format!("Redis: {e}")
        };
        if self.failures.is_new(&why) {
            log::error!("sink redis: {why}; events stay spooled and go out when Redis is back");
        }
        Delivery::Retry(why)
    }
}

impl Sink for RedisSink {
    fn name(&self) -> &str {
        "redis"
    }

    fn base_timeout(&self) -> Duration {
        self.timeout
    }

    fn deliver(&self, ev: &SpoolRecord, timeout: Duration) -> Delivery {
        let opts =
            MessageOptions { node: &self.node, include_frame: self.include_frame, mesh_points: false, max_bytes: 0 };
        let msg = bus::message(ev, opts, &mut lock(&self.shrinker));
        let mut con = match self.connection(timeout) {
            Ok(c) => c,
            Err(e) => return self.failed(&e),
        };
        let _ = con.set_read_timeout(Some(timeout));
        let _ = con.set_write_timeout(Some(timeout));
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream);
        if self.maxlen > 0 {
            cmd.arg("MAXLEN").arg("~").arg(self.maxlen);
        }
        cmd.arg("*").arg("id").arg(&ev.record.id).arg("event").arg(msg.json);
        match cmd.query::<String>(&mut con) {
            Ok(entry) => {
                lock(&self.idle).push(con);
                if let Some(was) = self.failures.recovered() {
                    log::info!("sink redis: delivering again (was: {was})");
                }
                Delivery::Done(format!("stream {} entry {entry}", self.stream))
            }
            Err(e) => self.failed(&e),
        }
    }
}
