//! The browser's part of a login, for the demo, the tests and the `login`
//! command: following the authorization URL to its redirect, and receiving
//! a redirect on a loopback port (RFC 8252 section 7.3).

use std::convert::Infallible;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use crate::component::Request as HttpRequest;
use crate::http_client::HttpClient;

/// Opens the authorization URL as a browser whose user approves at once
/// would, and returns where the server redirects to.
pub fn follow_authorization(http: &HttpClient, authorization_url: &str) -> Result<String> {
    let response = http.send(&HttpRequest {
        method: "GET".into(),
        url: authorization_url.to_owned(),
        headers: vec![("Accept".into(), "text/html".into())],
        body: Vec::new(),
    })?;
    if !(300..400).contains(&response.status) {
        bail!(
            "the authorization endpoint answered HTTP {} instead of redirecting: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect::<String>()
        );
    }
    response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("location"))
        .map(|(_, location)| location.clone())
        .ok_or_else(|| anyhow!("the authorization endpoint redirected without a Location"))
}

/// How long the browser's page may take to go out once the login's outcome
/// is known; a browser that stopped reading does not hold the command.
const PAGE_DEADLINE: Duration = Duration::from_secs(2);

/// A redirect the browser brought to the loopback listener. The browser
/// waits for [`RedirectReceiver::answer`] to say how the login went.
pub struct Redirect {
    /// The full URL the browser was sent back to.
    pub url: String,
    page: oneshot::Sender<&'static str>,
    served: oneshot::Receiver<()>,
}

/// Receives a login's redirects on a loopback port (RFC 8252 section 7.3).
/// A redirect that turns out not to belong to the login (a page that sent
/// the browser here on its own) is answered and the receiver goes on
/// waiting, so it cannot end a login it did not start.
pub struct RedirectReceiver {
    runtime: tokio::runtime::Runtime,
    received: mpsc::Receiver<Redirect>,
}

impl RedirectReceiver {
    /// Starts answering on `listener`: requests for `redirect_uri`'s path
    /// are redirects, anything else (a favicon) gets a waiting page.
    pub fn listen(listener: TcpListener, redirect_uri: &Url) -> Result<Self> {
        let origin = redirect_uri.origin().ascii_serialization();
        let callback_path = redirect_uri.path().to_owned();
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("failed to start the redirect listener")?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (sender, received) = mpsc::channel::<Redirect>(1);
        // Spawned, it runs only while the runtime is driven: in `next` and
        // `answer`. Browsers wait in the meantime.
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sender = sender.clone();
                let origin = origin.clone();
                let callback_path = callback_path.clone();
                tokio::spawn(async move {
                    let (served_sender, served) = oneshot::channel();
                    // One redirect per connection (it closes after its page).
                    let served = std::sync::Mutex::new(Some(served));
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let sender = sender.clone();
                        let url = format!("{origin}{}", request.uri());
                        // Browsers also ask for a favicon; only the callback counts.
                        let waiting = (request.uri().path() == callback_path)
                            .then(|| {
                                let (page, verdict) = oneshot::channel();
                                served
                                    .lock()
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .take()
                                    .map(|served| (Redirect { url, page, served }, verdict))
                            })
                            .flatten();
                        async move {
                            let page = match waiting {
                                Some((redirect, verdict)) => {
                                    let _ = sender.send(redirect).await;
                                    verdict.await.unwrap_or("The login was abandoned.")
                                }
                                None => "Waiting for the login redirect.",
                            };
                            let mut response = Response::new(Full::new(Bytes::from(page)));
                            *response.status_mut() = StatusCode::OK;
                            // One redirect per connection, so the connection
                            // ends once its page is written.
                            response
                                .headers_mut()
                                .insert(CONNECTION, HeaderValue::from_static("close"));
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    let _ = served_sender.send(());
                });
            }
        });
        Ok(Self { runtime, received })
    }

    /// The next redirect, or an error once `deadline` passes.
    pub fn next(&mut self, deadline: Instant) -> Result<Redirect> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let received = &mut self.received;
        self.runtime.block_on(async move {
            tokio::select! {
                redirect = received.recv() => redirect.ok_or_else(|| anyhow!("the redirect listener stopped")),
                () = tokio::time::sleep(wait) => Err(anyhow!("no login redirect arrived in time")),
            }
        })
    }

    /// Shows the browser `page` for `redirect` and waits (briefly) until it
    /// went out.
    pub fn answer(&mut self, redirect: Redirect, page: &'static str) {
        let Redirect {
            page: sender,
            served,
            ..
        } = redirect;
        let _ = sender.send(page);
        self.runtime.block_on(async move {
            let _ = tokio::time::timeout(PAGE_DEADLINE, served).await;
        });
    }
}
