"""docker-compose.yml lines up with the code: service names, ports, settings, credentials
and every mounted file. No Docker engine runs here, so the file is read the way Compose
interpolates it (tests/ecosystem/compose_file.py) and checked against otelspend's own
settings model, the Collector config and the Grafana provisioning."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
import yaml

from otelspend.api.sqlhttp.request import USER
from otelspend.settings import ClickHouseSettings, SqlSettings, env_names, load_settings, split_address
from tests.ecosystem.compose_file import (
    MissingVariable,
    container_ports,
    environment,
    interpolate,
    load_compose,
    mounts,
    port_mappings,
)
from tests.ecosystem.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
PINNED = re.compile(r"^[\w./-]+:\d+(\.\d+)+(-[\w.]+)?$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(COMPOSE)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _otelspend_settings(services):
    return load_settings(environ=environment(services["otelspend"]))


def test_the_stack_has_its_services(services):
    assert {"clickhouse", "otelspend", "otel-collector", "grafana"} <= set(services)


@pytest.mark.parametrize("name", ["clickhouse", "otel-collector", "grafana", "otel-collector-volume"])
def test_images_are_pinned_to_exact_versions(services, name):
    image = services[name]["image"]
    assert PINNED.match(image), f"{name}: {image} is not pinned to a version"
    assert "latest" not in image


def test_every_otelspend_variable_is_a_real_setting_and_validates(services):
    env = environment(services["otelspend"])
    known = env_names()
    names = [name for name in env if name.startswith("OTELSPEND_")]
    assert names and [n for n in names if n not in known] == []
    settings = load_settings(environ=env)  # raises ConfigError naming any bad value
    assert settings.clickhouse.dsn.get_secret_value().startswith("http://"), "the stack stores in the ClickHouse server"
    assert settings.node_id == "otelspend-1", "a stable node id survives container re-creation"
    for address in (settings.otlp.grpc_address, settings.otlp.http_address, settings.api.address):
        assert split_address(address)[0] == "0.0.0.0", f"{address}: a container must listen on every interface"


def test_otelspend_ports_match_its_listen_addresses(services):
    settings = _otelspend_settings(services)
    service = services["otelspend"]
    offered = container_ports(service)
    for address in (settings.otlp.grpc_address, settings.otlp.http_address, settings.api.address):
        assert split_address(address)[1] in offered, address
    published = {target for _, published, target in port_mappings(service) if published}
    assert published == {split_address(settings.api.address)[1]}, (
        "only the API is published; OTLP comes via the Collector"
    )
    assert service["build"] == "." and (REPO / "Dockerfile").is_file()


def test_otelspend_reaches_the_clickhouse_service_with_its_credentials(services):
    settings = _otelspend_settings(services)
    dsn = urlsplit(settings.clickhouse.dsn.get_secret_value())
    clickhouse = environment(services["clickhouse"])
    assert dsn.hostname == "clickhouse" and dsn.port == 8123
    assert (dsn.username, dsn.password) == (clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"])
    assert clickhouse["CLICKHOUSE_DB"] == settings.clickhouse.database
    assert services["otelspend"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert "8123/ping" in " ".join(services["clickhouse"]["healthcheck"]["test"])


def test_passwords_come_from_the_environment_when_given(services):
    env = {"CLICKHOUSE_PASSWORD": "s3cret-pass", "GRAFANA_CLICKHOUSE_PASSWORD": "gr4fana-pass"}
    overridden = load_compose(COMPOSE, env)["services"]
    assert (
        load_settings(environ=environment(overridden["otelspend"]))
        .clickhouse.dsn.get_secret_value()
        .endswith(":s3cret-pass@clickhouse:8123")
    )
    assert environment(overridden["clickhouse"])["CLICKHOUSE_PASSWORD"] == "s3cret-pass"
    assert environment(overridden["grafana"])["GRAFANA_CLICKHOUSE_PASSWORD"] == "gr4fana-pass"
    with pytest.raises(MissingVariable):
        interpolate("${REQUIRED}", {})


def test_collector_config_is_mounted_and_exports_to_the_otelspend_service(services):
    settings = _otelspend_settings(services)
    collector = services["otel-collector"]
    config_target = next(a.split("=", 1)[1] for a in collector["command"] if a.startswith("--config="))
    sources = dict((target, source) for source, target in mounts(collector))
    assert sources[config_target] == "./otel-collector-config.yaml"
    config = yaml.safe_load((REPO / "otel-collector-config.yaml").read_text())
    (exporter_id,) = config["service"]["pipelines"]["traces"]["exporters"]
    host, port = split_address(config["exporters"][exporter_id]["endpoint"])
    assert host in services and host == "otelspend"
    assert port == split_address(settings.otlp.grpc_address)[1] and port in container_ports(services["otelspend"])
    # Applications reach the Collector's receivers on the published ports.
    published = {target: published for _, published, target in port_mappings(collector) if published}
    for protocol in ("grpc", "http"):
        receiver_port = split_address(config["receivers"]["otlp"]["protocols"][protocol]["endpoint"])[1]
        assert published.get(receiver_port) == receiver_port
    assert split_address(config["extensions"]["health_check"]["endpoint"])[1] in published
    assert collector["depends_on"]["otelspend"]["condition"] == "service_healthy"


def test_the_persistent_queue_lives_in_a_volume_the_collector_can_write(compose, services):
    config = yaml.safe_load((REPO / "otel-collector-config.yaml").read_text())
    directory = config["extensions"]["file_storage/otelspend_queue"]["directory"]
    collector_mounts = dict(mounts(services["otel-collector"]))
    (volume,) = [source for source, target in collector_mounts.items() if directory.startswith(target + "/")]
    assert volume in compose["volumes"]
    init = services["otel-collector-volume"]
    init_target = dict(mounts(init))[volume]
    assert init["command"][:2] == ["chown", "-R"] and init["command"][2] == "10001:10001"
    assert init["command"][3] == init_target == collector_mounts[volume]
    assert services["otel-collector"]["depends_on"]["otel-collector-volume"]["condition"] == (
        "service_completed_successfully"
    )


def test_grafana_installs_the_pinned_plugin_and_mounts_its_provisioning(services):
    grafana = services["grafana"]
    env = environment(grafana)
    plugin, _, version = env["GF_PLUGINS_PREINSTALL_SYNC"].partition("@")
    assert plugin == "grafana-clickhouse-datasource" and re.fullmatch(r"\d+\.\d+\.\d+", version)
    targets = {target: source for source, target in mounts(grafana)}
    assert targets["/etc/grafana/provisioning/datasources"] == "./grafana/provisioning/datasources"
    assert targets["/etc/grafana/provisioning/dashboards"] == "./grafana/provisioning/dashboards"
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/otelspend.yaml").read_text())["providers"][0]
    dashboards_path = provider["options"]["path"]
    assert targets[dashboards_path] == "./grafana/dashboards"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_path + "/")
    assert (REPO / "grafana/dashboards" / home.removeprefix(dashboards_path + "/")).is_file()


def test_grafana_datasource_reads_the_otelspend_database_as_a_read_only_user(services):
    settings = _otelspend_settings(services)
    source = _datasource("otelspend-clickhouse")
    data = source["jsonData"]
    assert data["host"] == "clickhouse" and data["port"] == urlsplit(settings.clickhouse.dsn.get_secret_value()).port
    assert data["protocol"] == "http" and data["defaultDatabase"] == settings.clickhouse.database
    password_variable = source["secureJsonData"]["password"].removeprefix("$")
    assert password_variable in environment(services["grafana"])
    # The same user, password variable and database on the ClickHouse side.
    users = ET.parse(REPO / "grafana/clickhouse-users.xml").getroot()
    user = users.find(f"users/{data['username']}")
    assert user is not None
    assert user.find("password").get("from_env") == password_variable
    assert password_variable in environment(services["clickhouse"])
    profile = users.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") == "2"
    assert user.findtext("grants/query") == f"GRANT SELECT ON {settings.clickhouse.database}.*"
    writer = urlsplit(settings.clickhouse.dsn.get_secret_value()).username
    assert writer != data["username"], "not otelspend's writer"


def _datasource(uid: str) -> dict:
    sources = yaml.safe_load((REPO / "grafana/provisioning/datasources/otelspend.yaml").read_text())["datasources"]
    return next(source for source in sources if source["uid"] == uid)


def test_grafana_reaches_the_sql_endpoint_of_make_run_on_the_docker_host(services):
    """The second datasource: otelspend's own SQL endpoint (embedded store) on the host."""
    source = _datasource("otelspend-sql")
    data = source["jsonData"]
    grafana = services["grafana"]
    host = data["host"]
    assert f"{host}:host-gateway" in grafana["extra_hosts"]
    assert data["port"] == split_address(SqlSettings().address)[1]
    assert data["username"] == USER and data["protocol"] == "http"
    assert data["defaultDatabase"] == ClickHouseSettings().database
    password_variable = source["secureJsonData"]["password"].removeprefix("$")
    assert password_variable == "OTELSPEND_SQL_PASSWORD" and password_variable in environment(grafana)


def test_every_mounted_file_exists_in_the_repository(compose, services):
    named = set(compose["volumes"])
    for name, service in services.items():
        for source, _ in mounts(service):
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_no_two_services_publish_the_same_host_port(services):
    published = [(ip, port) for s in services.values() for ip, port, _ in port_mappings(s) if port]
    assert len(published) == len(set(published))
