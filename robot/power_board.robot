*** Settings ***
Documentation       Power board rev C functional test on the simulated bench, in Robot Framework.
...
...                 The same product spec (products/power_board.yaml), station
...                 (stations/sim_bench.yaml: supply, meter and load through pyvisa-sim) and
...                 stores (data/) as ``litmus-seq run sequences/power_board_fct.yaml``: limits
...                 come from the spec with a 10 % guardband, every measurement is stamped with
...                 the instrument and calibration that took it, and each test is a step of the run.
...
...                 Run it from the repository root:
...                 ``robot --outputdir data/robot --variable DUT:SN001 robot/``
Library             litmus_seq.robot.LitmusSeq
Suite Setup         Power Up
Suite Teardown      Power Down


*** Variables ***
${DUT}              SN-ROBOT-0001
# The answer to "Is the status LED green?" in an unattended run; give it empty
# (--variable LED_GREEN:) to ask the operator through the litmus_seq_prompt hook.
${LED_GREEN}        yes


*** Test Cases ***
Output Voltage
    [Documentation]    The 3.3 V rail and the input current at every supply voltage and load.
    ${vectors}=    Get Vectors    vin=${{[5.0, 12.0]}}    load=${{[0.1, 0.5]}}
    FOR    ${vector}    IN    @{vectors}
        Start Vector    ${vector}
        Call Instrument    psu    set_voltage    ${vector}[vin]
        Call Instrument    eload    set_current    ${vector}[load]
        Measure From    dmm.measure_dc_voltage    rail_3v3
        Measure From    psu.measure_current    input_current
        End Vector
    END

Firmware
    [Documentation]    The firmware release (string equality) and family (pattern) from the spec.
    ${fw}=    Call Instrument    dut    read_firmware
    Measure    fw_version    ${fw}
    Measure    fw_family    ${fw}
    Record    firmware_read_by    robot

Self Test
    [Documentation]    The DUT's built-in self test: Robot's string "true" is judged as a boolean.
    Measure    self_test    true

Chamber Temperature
    [Documentation]    An explicit limit given in the keyword, in the chamber's units.
    Configure    chamber_setpoint    25
    ${t}=    Measure From    chamber.read_temperature    chamber_temperature    low=15    high=35
    ...    units=degC
    Observe    ambient    ${t}

LED Check
    [Documentation]    An operator check: answered by \${LED_GREEN}, or asked when it is empty.
    Prompt Operator    Is the status LED green?    answer=${LED_GREEN}


*** Keywords ***
Power Up
    Start Run    dut_serial=${DUT}    product=power_board    guardband_pct=10
    Call Instrument    psu    set_current_limit    1.0
    Call Instrument    psu    set_voltage    5.0
    Call Instrument    psu    output_on
    Call Instrument    eload    input_on

Power Down
    Call Instrument    eload    input_off
    Call Instrument    psu    output_off
    End Run
