//! The Patroni lab: etcd, one Patroni per node, HAProxy in front.

use super::OrchestratorView;
use crate::cluster::osuser::OsUser;
use crate::cluster::state::LabState;
use crate::cluster::Lab;
use anyhow::{bail, Result};

pub async fn create(_lab: &Lab, _state: &mut LabState, _user: Option<&OsUser>) -> Result<()> {
    bail!("patroni: not built yet")
}
pub async fn start_all(_lab: &Lab, _state: &mut LabState) -> Result<()> {
    bail!("patroni: not built yet")
}
pub async fn stop_all(_lab: &Lab, _state: &LabState) -> Result<()> {
    bail!("patroni: not built yet")
}
pub async fn apply_settings(_lab: &Lab, _state: &LabState) -> Result<()> {
    bail!("patroni: not built yet")
}
pub async fn kill_node(_lab: &Lab, _state: &LabState, _name: &str) -> Result<()> {
    bail!("patroni: not built yet")
}
pub async fn start_node(_lab: &Lab, _state: &LabState, _name: &str) -> Result<()> {
    bail!("patroni: not built yet")
}
pub async fn stop_node(_lab: &Lab, _state: &LabState, _name: &str) -> Result<()> {
    bail!("patroni: not built yet")
}
pub fn agent_running(_lab: &Lab, _name: &str) -> bool {
    false
}
pub async fn view(_lab: &Lab, _state: &LabState) -> OrchestratorView {
    unimplemented!()
}
pub async fn switchover(_lab: &Lab, _state: &LabState, _target: Option<&str>) -> Result<String> {
    bail!("patroni: not built yet")
}
pub fn access(
    _lab: &Lab,
    _state: &LabState,
) -> Result<(Option<crate::pg::Endpoint>, Option<crate::pg::Endpoint>)> {
    bail!("patroni: not built yet")
}
pub async fn writer(_lab: &Lab, _state: &LabState) -> Option<String> {
    None
}
pub async fn promotion_began(
    _lab: &Lab,
    _state: &LabState,
    _node: &str,
    _since: std::time::SystemTime,
) -> Option<std::time::SystemTime> {
    None
}
pub async fn why_not(_lab: &Lab, _state: &LabState, _killed: &str) -> String {
    String::new()
}
