"""The layers Cog makes with RUN around the Python dependencies, in Cog's order:

    base -> tini -> system_packages -> (dependencies) -> ldconfig -> build.run / pre_install

tini and system packages are unpacked from the base distribution's packages on the host
(layers.apt), ldconfig's cache is written on the host (layers.ldconfig); only `run` steps, and
packages whose maintainer scripts must run, go to a container (layers.runsteps). `check` fails
before any work when such steps exist and no container can run.
"""

from __future__ import annotations

from dataclasses import dataclass

from .assemble import AddedLayer
from .config import CogConfig
from .errors import OciasmError
from .layers import apt, ldconfig, runsteps
from .layers.dpkg import NotDebian
from .layers.runsteps import ContainerStep
from .progress import Progress
from .secrets import SecretSource
from .store import BlobStore

ENTRYPOINT = ["/sbin/tini", "--"]
TINI = apt.AptRequest(("tini",), recommends=False, links=(("/sbin/tini", "/usr/bin/tini"),), source="tini")
TINI_LINE = ("RUN apt-get update -qq && apt-get install -qqy --no-install-recommends tini && "
             "rm -rf /var/lib/apt/lists/* && ln -sf /usr/bin/tini /sbin/tini")


def apt_line(packages: tuple[str, ...]) -> str:
    """Cog's system_packages step."""
    return ("RUN --mount=type=cache,target=/var/cache/apt,sharing=locked apt-get update -qq && "
            f"apt-get install -qqy {' '.join(packages)} && rm -rf /var/lib/apt/lists/*")


def run_steps(config: CogConfig) -> list[ContainerStep]:
    """`build.run` then the deprecated `pre_install`, as Cog writes them into its Dockerfile."""
    steps = []
    for i, step in enumerate(config.build.run):
        mounts = " ".join(f"--mount=type=secret,id={m.id},target={m.target}" for m in step.mounts)
        steps.append(ContainerStep(f"RUN {mounts} {step.command}" if mounts else f"RUN {step.command}",
                                   f"build.run[{i}]", step.command, tuple(m.id for m in step.mounts)))
    steps += [ContainerStep(f"RUN {command}", f"build.pre_install[{i}]", command)
              for i, command in enumerate(config.build.pre_install)]
    return steps


def _where(config: CogConfig) -> str:
    field = "build.run" if config.build.run else "build.pre_install" if config.build.pre_install \
        else "build.system_packages"
    return config.where(field)


def check(config: CogConfig, secrets: tuple[SecretSource, ...]) -> None:
    """Before any work: every mounted secret is given, and a container can run the steps that need one."""
    steps = run_steps(config)
    runsteps.check_secrets(steps, secrets, config.where("build.run"))
    packages = config.build.system_packages
    if packages and (why := apt.host_problem()):
        steps.append(ContainerStep(apt_line(packages), f"build.system_packages ({why})",
                                   f"apt-get install {' '.join(packages)}"))
    runsteps.require_container(steps, _where(config))


def planned(config: CogConfig, cog_base: bool) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """For `plan`: the (name, inputs) of the layers made before and after the dependencies.
    Whether they are cached depends on the layers below them, known only to a build."""
    before = [] if cog_base else [("tini", {"packages": list(TINI.packages)})]
    if packages := config.build.system_packages:
        before.append(("system_packages", {"packages": list(packages),
                                           "where": "container" if apt.host_problem() else "host"}))
    after = [] if cog_base else [("ldconfig", {"conf": "/etc/ld.so.conf.d/cog.conf"})]
    after += [(step.label, {"command": step.command, "secrets": list(step.secrets), "where": "container"})
              for step in run_steps(config)]
    return before, after


# Set after the RUN steps in Cog's Dockerfile, so the steps never see them.
_LATER_ENV = ("COG_PREDICT_TYPE_STUB=", "COG_TRAIN_TYPE_STUB=", "COG_MAX_CONCURRENCY=")


@dataclass
class SystemLayers:
    """The layers around the dependencies for one image. `env` is the image's final env;
    `entrypoint` is set once tini is in. A cog-base image has tini and skips Cog's ldconfig step."""

    store: BlobStore
    config: CogConfig
    base_config: dict
    base_layers: tuple
    env: list[str]
    secrets: tuple[SecretSource, ...]
    no_cache: bool
    progress: Progress
    cog_base: bool = False
    entrypoint: list[str] | None = None

    def _lower(self, added: list[AddedLayer]) -> list:
        return [*self.base_layers, *(a.layer for a in added)]

    def _in_container(self, added: list[AddedLayer], steps: list[ContainerStep]) -> list[AddedLayer]:
        env = [e for e in self.env if not e.startswith(_LATER_ENV)]
        stage = runsteps.stage_image(self.base_config, self.base_layers, added, env)
        key = runsteps.recipe_key(stage, steps, self.secrets)
        if not self.no_cache and (hit := runsteps.cached(self.store, key)) is not None:
            self.progress.step(f"{steps[0].label}: cached")
            return hit
        return runsteps.run(self.store, key, stage, steps, self.secrets, self.progress)

    def _packages(self, added: list[AddedLayer], request: apt.AptRequest, line: str,
                  where: str) -> list[AddedLayer] | None:
        """The layer installing `request` (none when all is installed already); None when
        neither this host nor a container can install it."""
        step = ContainerStep(line, request.source, f"apt-get install {' '.join(request.packages)}")
        if why := apt.host_problem():
            if runsteps.container_problem():
                return None
            self.progress.step(f"{request.source}: {why}; installing in a container")
            return self._in_container(added, [step])
        lower = self._lower(added)
        key = apt.recipe_key(lower, request)
        built = None if self.no_cache else apt.cached(self.store, key)
        if built is not None:
            self.progress.step(f"{request.source}: cached")
        else:
            try:
                built = apt.build(self.store, key, lower, self.base_config, request, self.progress)
            except apt.NeedsContainer as e:
                if problem := runsteps.container_problem():
                    raise OciasmError(f"{where}: {'; '.join(e.reasons)}: dpkg must run in a container, "
                                      f"but {problem}") from None
                self.progress.step(f"{request.source}: {e.reasons[0]}; installing in a container")
                return self._in_container(added, [step])
            self.progress.step(f"{request.source}: unpacked {', '.join(built.installed) or 'nothing new'}")
        return [] if built.layer is None else [AddedLayer(built.layer, line)]

    def before_deps(self) -> list[AddedLayer]:
        """tini (the entrypoint), then the system packages."""
        added: list[AddedLayer] = []
        if not self.cog_base:
            try:
                tini = self._packages(added, TINI, TINI_LINE, "tini")
            except NotDebian as e:
                self.progress.warn(f"no tini in the image: {e}; the image gets no ENTRYPOINT")
                tini = []
            if tini is None:
                self.progress.warn(f"no tini in the image: {apt.host_problem()} and no container can run; "
                                   "the image gets no ENTRYPOINT")
            elif tini:
                added += tini
                self.entrypoint = ENTRYPOINT
        packages = self.config.build.system_packages
        if packages:
            request = apt.AptRequest(packages, source="system_packages")
            layers = self._packages(added, request, apt_line(packages), self.config.where("build.system_packages"))
            if layers is None:  # check() refuses this before any work
                raise OciasmError("system_packages need a container and none can run")
            added += layers
        return added

    def after_deps(self, added: list[AddedLayer]) -> list[AddedLayer]:
        """Cog's ldconfig step, then the run steps; `added` is every layer above the base so far."""
        made: list[AddedLayer] = []
        if not self.cog_base:
            lower = self._lower(added)
            key = ldconfig.recipe_key(lower)
            layer = None if self.no_cache else ldconfig.cached(self.store, key)
            if layer is None:
                self.progress.step("ldconfig: writing /etc/ld.so.conf.d/cog.conf and the linker cache")
                layer = ldconfig.build(self.store, key, lower)
            made.append(AddedLayer(layer, ldconfig.CREATED_BY))
        if steps := run_steps(self.config):
            made += self._in_container([*added, *made], steps)
        return made
