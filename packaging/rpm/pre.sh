# %pre of the slurm-usage .rpm: the system group and user, if missing (before the files land,
# as the Fedora/RHEL packaging guidelines do it). Needs shadow-utils (Requires(pre)).
getent group slurm-usage >/dev/null || groupadd --system slurm-usage
getent passwd slurm-usage >/dev/null || \
    useradd --system --gid slurm-usage --home-dir /var/lib/slurm-usage --no-create-home \
        --shell /sbin/nologin --comment "slurm-usage collector" slurm-usage
exit 0
