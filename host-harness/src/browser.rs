//! The browser's part of a login, for the demo, the tests and the `login`
//! command: following the authorization URL to its redirect, and receiving
//! a redirect on a loopback port (RFC 8252 section 7.3).

use std::convert::Infallible;
use std::net::TcpListener;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
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

/// Waits on a loopback listener for the browser's redirect to
/// `redirect_uri` and returns its full URL; answers the browser with a page
/// saying it may close.
pub fn receive_redirect(
    listener: TcpListener,
    redirect_uri: &Url,
    timeout: Duration,
) -> Result<String> {
    let origin = redirect_uri.origin().ascii_serialization();
    let callback_path = redirect_uri.path().to_owned();
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("failed to start the redirect listener")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (sender, mut received) = mpsc::channel::<String>(1);
        let accept = async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sender = sender.clone();
                let origin = origin.clone();
                let callback_path = callback_path.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let sender = sender.clone();
                        let redirect = format!("{origin}{}", request.uri());
                        // Browsers also ask for a favicon; only the callback counts.
                        let is_callback = request.uri().path() == callback_path;
                        async move {
                            let page = if is_callback {
                                let _ = sender.send(redirect).await;
                                "Login complete. You can close this window."
                            } else {
                                "Waiting for the login redirect."
                            };
                            let mut response = Response::new(Full::new(Bytes::from(page)));
                            *response.status_mut() = StatusCode::OK;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        tokio::select! {
            url = received.recv() => url.ok_or_else(|| anyhow!("the redirect listener stopped")),
            () = accept => Err(anyhow!("the redirect listener stopped")),
            () = tokio::time::sleep(timeout) => Err(anyhow!("no login redirect arrived within {} s", timeout.as_secs())),
        }
    })
}
