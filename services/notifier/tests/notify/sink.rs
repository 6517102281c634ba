//! A local HTTP endpoint standing in for a chat platform: records every request and
//! answers from a script (then the default answer).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Request {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The status this request was answered with.
    pub status: u16,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.path_and_query.split_once('?')?.1;
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    script: VecDeque<(u16, String)>,
    default: (u16, String),
}

#[derive(Clone)]
pub struct Sink {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Sink {
    /// Listen on a free loopback port; answer `default_status` with `default_body`.
    pub async fn start(default_status: u16, default_body: &str) -> Sink {
        let state = Arc::new(Mutex::new(State {
            default: (default_status, default_body.to_owned()),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let s = state.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let mut st = s.lock().unwrap();
                let (status, answer) = st.script.pop_front().unwrap_or_else(|| st.default.clone());
                st.requests.push(Request {
                    path_and_query: uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers,
                    body,
                    at: Instant::now(),
                    status,
                });
                (StatusCode::from_u16(status).unwrap(), answer)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Sink { url, state }
    }

    /// Answer the next requests with these, in order.
    pub fn script(&self, answers: &[(u16, &str)]) {
        let mut st = self.state.lock().unwrap();
        st.script
            .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }
}
