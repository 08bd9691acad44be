"""Install lmd-toolkit: ``pip install -e ".[tests,optional]"``."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list[str]:
    """Return the requirement lines of ``requirements/<name>.txt``."""
    lines = []
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-r'):
                lines.append(line)
    return lines


def read_version() -> str:
    with open(osp.join(HERE, 'lmd_toolkit', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='lmd_toolkit',
    version=read_version(),
    description='Latent Masking Diffusion (LMD): fast MAE-style pretraining in '
    'the latent space of a frozen autoencoder, on OpenMMLab registries.',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime'),
    extras_require={
        'tests': read_requirements('tests'),
        'optional': read_requirements('optional'),
        'docs': read_requirements('docs'),
        'all': read_requirements('tests') + read_requirements('optional'),
    },
)
