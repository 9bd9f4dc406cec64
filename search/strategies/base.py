"""The strategy interfaces and their registry. A supernet strategy decides how each searchable
layer runs in a weight step and in an architecture step, what the architecture loss is, and how
the final discrete architecture is derived; the engine (`search.engine`) owns the loop."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch

from search.cost import LatencyCostModel
from search.supernet import LayerMode, Supernet

StrategyT = TypeVar("StrategyT", bound="Strategy")


@dataclass(frozen=True)
class Budget:
    """Latency budget (ms) on one device, as a cost model of that device."""

    cost_model: LatencyCostModel
    latency_ms: float

    @property
    def device(self) -> str:
        return self.cost_model.device


@dataclass
class StepDetails:
    """What an architecture step reports: the progress stream and logs come from it."""

    loss: float
    task_loss: float
    expected_latency_ms: dict[str, float]
    penalty: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class Strategy:
    """What every registered strategy has: a name and options checked against its defaults.
    A supernet strategy subclasses `SearchStrategy`; a baseline that trains stand-alone
    candidates subclasses `search.strategies.baseline.BaselineStrategy`."""

    name: ClassVar[str]

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The options merged over the defaults; ValueError naming what is wrong (an unknown
        key, or a value `validate_options` refuses), before any work starts."""
        unknown = set(options) - set(cls.option_defaults())
        if unknown:
            raise ValueError(
                f"strategy {cls.name!r} has no option(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(sorted(cls.option_defaults())) or 'none'}"
            )
        merged = {**cls.option_defaults(), **options}
        cls.validate_options(merged)
        return merged

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        """Refuse bad option values (ValueError); none are checked by default."""
        del options


class SearchStrategy(Strategy, ABC):
    """A strategy over the weight-sharing supernet; the engine (`search.engine`) runs it."""

    # Adam's learning rate for the architecture parameters unless the settings give one.
    default_arch_lr: ClassVar[float] = 0.01

    def __init__(self, supernet: Supernet, budgets: Sequence[Budget], **options: Any) -> None:
        self.supernet = supernet
        self.budgets = list(budgets)
        self.options = self.check_options(options)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Schedules (temperature annealing, ...); none by default."""
        del epoch, epochs

    def weight_modes(self, generator: torch.Generator) -> list[LayerMode]:
        """How each layer runs in a weight step; default: one path sampled from p (single-path
        training, memory of one path)."""
        probs = self.supernet.probabilities()
        return [int(torch.multinomial(p.detach(), 1, generator=generator)) for p in probs]

    @abstractmethod
    def architecture_loss(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, StepDetails]:
        """The architecture step's loss on a validation batch and its details."""

    def after_architecture_step(self) -> None:
        """Projections back onto the feasible set (HardCoRe), clipping, ...; none by default."""
        return None

    @abstractmethod
    def derive(self) -> list[int]:
        """The final discrete architecture: one candidate index per searchable layer."""

    def replace_budget(self, index: int, budget: Budget) -> None:
        """Derive under `budget` in place of budget `index` from now on (the exact SRAM check's
        tighter budget, `search.exact_sram`)."""
        self.budgets[index] = budget

    def expected_latencies(self) -> dict[str, torch.Tensor]:
        probs = self.supernet.probabilities()
        return {b.device: b.cost_model.expected_cost(probs) for b in self.budgets}

    def state(self) -> dict[str, Any]:
        """Strategy state that a checkpoint must hold beyond the supernet's parameters."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        del state

    def describe(self) -> dict[str, float]:
        """Figures for the progress stream (temperature, ...)."""
        return {}

    def report(self) -> dict[str, Any]:
        """What metrics.json records of the strategy's own settings (hardcore's margin, ...)."""
        return {}


_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(name: str) -> Callable[[type[StrategyT]], type[StrategyT]]:
    """Register a strategy class under `name` (`hwnas search --strategy NAME`); a duplicate
    name is an error. Every module of `search/strategies/` is imported with the package, so a
    new module registers itself with no other edit."""

    def decorator(cls: type[StrategyT]) -> type[StrategyT]:
        if name in _REGISTRY:
            raise ValueError(f"search strategy {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def strategy_names() -> list[str]:
    """Every strategy `hwnas search --strategy` takes, sorted."""
    import search.strategies  # noqa: F401  (imports, and so registers, every strategy module)

    return sorted(_REGISTRY)


def get_strategy(name: str) -> type[Strategy]:
    """A registered strategy class by name; ValueError naming the valid ones."""
    names = strategy_names()
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(names)}")
    return _REGISTRY[name]


def get_search_strategy(name: str) -> type[SearchStrategy]:
    """A supernet strategy by name; ValueError for a baseline or an unknown name."""
    cls = get_strategy(name)
    if not issubclass(cls, SearchStrategy):
        raise ValueError(f"strategy {name!r} trains stand-alone candidates, not a supernet")
    return cls


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as strategy options, each value read as JSON where it parses (`5`,
    `0.9`, `null`) and kept as a string otherwise (`hard`). ValueError on an item without `=`."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"bad option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def argmax_choices(supernet: Supernet) -> list[int]:
    return [int(torch.argmax(a.detach())) for a in supernet.alphas]
