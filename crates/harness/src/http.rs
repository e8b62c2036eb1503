//! A minimal HTTP/1.0 GET for MediaMTX's control API: plain text on
//! loopback, so a full client library would add weight and nothing else.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn get_json(authority: &str, path: &str) -> Result<serde_json::Value, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("GET http://{authority}{path}: {e}"))?;
        let request =
            format!("GET {path} HTTP/1.0\\r\\nHost: {authority}\\r\\nAccept: application/json\\r\\n\\r\\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("GET http://{authority}{path}: no answer within {TIMEOUT:?}"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\\r\\n\\r\\n")
        .ok_or_else(|| format!("GET http://{authority}{path}: not an HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        return Err(format!("GET http://{authority}{path}: {status}"));
    }
    serde_json::from_str(body).map_err(|e| format!("GET http://{authority}{path}: {e}"))
}
