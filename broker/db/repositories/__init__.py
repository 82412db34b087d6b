"""One repository per stored thing, each a thin SQL mapping onto `broker.domain.ports`."""
