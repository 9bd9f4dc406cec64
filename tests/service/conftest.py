"""The service's fixtures: a real `hwnas serve` for every test module that asks for one."""

from tests.service.fixtures import service_server as service_server
