"""YAML → frozen, validated settings. Every error names the key path
(``secrets[0].registries[1]``) and says how to fix it; loading contacts nothing."""

from rotator.config.loading import load_settings, parse_settings
from rotator.config.schema import (
    ClusterSpec,
    GenericOptions,
    NamespaceSelector,
    ProbeSpec,
    RegistrySpec,
    RuntimeSpec,
    ScheduleSpec,
    SecretRef,
    SecretSpec,
    Settings,
    ValueSource,
    VerifySpec,
)
from rotator.config.values import parse_duration, split_selector

__all__ = [
    "ClusterSpec",
    "GenericOptions",
    "NamespaceSelector",
    "ProbeSpec",
    "RegistrySpec",
    "RuntimeSpec",
    "ScheduleSpec",
    "SecretRef",
    "SecretSpec",
    "Settings",
    "ValueSource",
    "VerifySpec",
    "load_settings",
    "parse_duration",
    "parse_settings",
    "split_selector",
]
