//! A DNS server on a loopback UDP port that answers TXT queries from a table:
//! what a domain's owner would publish. The resolver under test is the real
//! one, asking over the network.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};

pub struct TxtServer {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TxtServer {
    pub async fn start() -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let table = records.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let reply = answer(&query, &table.lock().unwrap());
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        });
        Self {
            addr,
            records,
            task,
        }
    }

    /// Publishes a TXT record (`name` without the trailing dot).
    pub fn publish(&self, name: &str, value: &str) {
        self.records
            .lock()
            .unwrap()
            .entry(format!("{}.", name.to_ascii_lowercase()))
            .or_default()
            .push(value.to_string());
    }
}

impl Drop for TxtServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &Message, table: &HashMap<String, Vec<String>>) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_authoritative(true);
    let mut found = false;
    for q in query.queries() {
        reply.add_query(q.clone());
        let values = table.get(&q.name().to_ascii().to_ascii_lowercase());
        if let (RecordType::TXT, Some(values)) = (q.query_type(), values) {
            for v in values {
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::TXT(TXT::new(vec![v.clone()])),
                ));
                found = true;
            }
        }
    }
    if !found {
        reply.set_response_code(ResponseCode::NXDomain);
    }
    reply
}
